// kt.v1.Models: the repository as the server sees it, and load / unload / reload (hot swap) on demand.
import type { ServerUnaryCall, sendUnaryData } from '@grpc/grpc-js';
import { InvalidInputError } from '../core/errors.js';
import { modelKinds, modelStates } from '../contract/wire-names.js';
import { ModelRef } from '../gen/kt/v1/common.js';
import {
  DescribeModelResponse,
  ListModelsResponse,
  LoadModelResponse,
  ModelInfo,
  ModelKind,
  ReloadModelResponse,
  UnloadModelResponse,
  type DescribeModelRequest,
  type ListModelsRequest,
  type LoadModelRequest,
  type ModelsServer,
  type ReloadModelRequest,
  type UnloadModelRequest,
} from '../gen/kt/v1/models.js';
import type { ModelVersionView } from './model-registry.js';
import type { ServingContext } from './serving-context.js';
import { answer, redactPaths } from './status.js';

/** A registry view as the wire ModelInfo. */
export function modelInfoOf(v: ModelVersionView): ModelInfo {
  const m = v.manifest;
  const createdAt = Date.parse(m.createdAt);
  return ModelInfo.fromPartial({
    name: v.name,
    version: v.version,
    kind: modelKinds.toWire[m.kind] ?? ModelKind.MODEL_KIND_UNSPECIFIED,
    tasks: m.tasks,
    description: m.description,
    input: {
      tensorName: m.input.name,
      layout: m.input.layout,
      sizePx: m.input.size,
      colorOrder: m.input.colorOrder,
      scale: m.input.scale,
      mean: m.input.mean,
      std: m.input.std,
      cropMargin: m.input.cropMargin,
      cropSquare: m.input.cropSquare,
    },
    outputs: m.outputs.map((o) => ({
      tensorName: o.name,
      task: o.task,
      decodingType: o.decoding.type,
      labels: o.decoding.type === 'classification' ? o.decoding.labels : [],
      landmarkScheme: o.decoding.type === 'landmarks' ? o.decoding.scheme : '',
      landmarkCount: o.decoding.type === 'landmarks' ? o.decoding.count : 0,
      embeddingSize: o.decoding.type === 'embedding' ? o.decoding.size : 0,
      decodingJson: JSON.stringify(o.decoding),
    })),
    ...(m.encoder
      ? {
          encoder: {
            tensorName: m.encoder.tensor,
            width: m.encoder.width,
            spatialHeight: m.encoder.spatial[0],
            spatialWidth: m.encoder.spatial[1],
            layout: m.encoder.layout,
            head: m.encoder.head,
          },
        }
      : {}),
    ...(m.training
      ? { training: { priors: m.training.priors, canonicalTask: m.training.canonical, data: m.training.data, metrics: m.training.metrics } }
      : {}),
    sha256: m.sha256,
    createdAtUnixMs: Number.isFinite(createdAt) ? createdAt : 0,
    state: modelStates.toWire[v.state],
    stateMessage: redactPaths(v.stateMessage),
    provider: v.provider,
    serving: v.serving,
  });
}

function required(name: string, field = 'name'): string {
  if (name === '') throw new InvalidInputError(`${field} is required`);
  return name;
}

export function modelsService(ctx: ServingContext): ModelsServer {
  const { registry } = ctx;
  const log = (call: string) => ({ logger: ctx.log, call: `Models.${call}` });
  return {
    listModels: (call: ServerUnaryCall<ListModelsRequest, ListModelsResponse>, callback: sendUnaryData<ListModelsResponse>) =>
      answer(callback, log('ListModels'), async () => {
        await registry.scan();
        const task = call.request.task;
        return ListModelsResponse.fromPartial({
          models: registry
            .list()
            .filter((v) => task === '' || v.manifest.tasks.includes(task as never) || v.manifest.outputs.some((o) => o.task === task))
            .map(modelInfoOf),
        });
      }),
    describeModel: (call: ServerUnaryCall<DescribeModelRequest, DescribeModelResponse>, callback: sendUnaryData<DescribeModelResponse>) =>
      answer(callback, log('DescribeModel'), async () => {
        await registry.scan();
        return DescribeModelResponse.fromPartial({
          model: modelInfoOf(registry.describe(required(call.request.name), call.request.version)),
        });
      }),
    loadModel: (call: ServerUnaryCall<LoadModelRequest, LoadModelResponse>, callback: sendUnaryData<LoadModelResponse>) =>
      answer(callback, log('LoadModel'), async () => {
        await registry.scan();
        return LoadModelResponse.fromPartial({
          model: modelInfoOf(await registry.load(required(call.request.name), call.request.version)),
        });
      }),
    unloadModel: (call: ServerUnaryCall<UnloadModelRequest, UnloadModelResponse>, callback: sendUnaryData<UnloadModelResponse>) =>
      answer(callback, log('UnloadModel'), () =>
        UnloadModelResponse.fromPartial({ models: registry.unload(required(call.request.name), call.request.version).map(modelInfoOf) }),
      ),
    reloadModel: (call: ServerUnaryCall<ReloadModelRequest, ReloadModelResponse>, callback: sendUnaryData<ReloadModelResponse>) =>
      answer(callback, log('ReloadModel'), async () => {
        const outcome = await registry.reload(call.request.name === '' ? undefined : call.request.name);
        return ReloadModelResponse.fromPartial({
          models: outcome.serving.map(modelInfoOf),
          failed: outcome.failed.map((f) => ModelRef.fromPartial(f)),
        });
      }),
  };
}
