// FaceAnalysisClient: the gateway-side SDK over the generated grpc-js clients (one shared channel), with typed results and errors.
import { Channel, InterceptingCall, Metadata, credentials } from '@grpc/grpc-js';
import type { ChannelCredentials, ClientDuplexStream, ClientUnaryCall, Interceptor, ServiceError } from '@grpc/grpc-js';
import { InvalidInputError } from '../core/errors.js';
import {
  HealthCheckRequest,
  HealthCheckResponse_ServingStatus,
  HealthClient as GeneratedHealthClient,
} from '../gen/grpc/health/v1/health.js';
import type { HealthCheckResponse } from '../gen/grpc/health/v1/health.js';
import { AnalyzeRequest, FaceAnalysisClient as GeneratedFaceAnalysisClient } from '../gen/kt/v1/face_analysis.js';
import type { AnalyzeResponse, StreamRequest, StreamResponse } from '../gen/kt/v1/face_analysis.js';
import {
  DeletePersonRequest,
  EnrolRequest,
  GalleryClient as GeneratedGalleryClient,
  IdentifyRequest,
  ListPeopleRequest,
} from '../gen/kt/v1/gallery.js';
import type { DeletePersonResponse, EnrolResponse, IdentifyResponse, ListPeopleResponse, Person } from '../gen/kt/v1/gallery.js';
import {
  DescribeModelRequest,
  ListModelsRequest,
  LoadModelRequest,
  ModelsClient as GeneratedModelsClient,
  ReloadModelRequest,
  UnloadModelRequest,
} from '../gen/kt/v1/models.js';
import type {
  DescribeModelResponse,
  ListModelsResponse,
  LoadModelResponse,
  ModelInfo as ProtoModelInfo,
  ReloadModelResponse,
  UnloadModelResponse,
} from '../gen/kt/v1/models.js';
import { modelKinds, modelStates } from '../contract/wire-names.js';
import type { ModelKindName as ContractModelKindName, ModelStateName as ContractModelStateName } from '../contract/wire-names.js';
import { AnalysisStream } from './analysis-stream.js';
import type { StreamInit } from './analysis-stream.js';
import { channelOptionsOf, resolveClientOptions } from './client-options.js';
import type { FaceAnalysisClientInit, FaceAnalysisClientOptions } from './client-options.js';
import { DeadlineExceededError, UnavailableError, errorFromStatus } from './errors.js';
import { analysisToProto, frameResultFromProto, imageToProto } from './results.js';
import type { AnalysisInit, AnalysisResult, BoxPx, FrameInput, IdentityResult, ImageInput } from './results.js';

/** Per-call options of unary calls. */
export interface CallInit {
  /** Deadline in milliseconds from now. Default: the client's deadlineMs. */
  deadlineMs?: number;
  /** Wait for the channel to connect instead of failing fast with UNAVAILABLE. Default false. */
  waitForReady?: boolean;
  /** Extra request metadata (e.g. an auth token). */
  metadata?: Record<string, string>;
}

/** Options of `client.analyze()`. */
export interface AnalyzeInit extends AnalysisInit, CallInit {
  /** Echoed in the result. Default 0. */
  sequence?: number;
  /** Capture time, Unix ms; echoed. Default 0 (the server uses its receive time). */
  captureTimeUnixMs?: number;
}

/** The contract's model kind, or `unspecified` for a value this SDK does not know. */
export type ModelKindName = ContractModelKindName | 'unspecified';
/** The contract's model state, or `unspecified` for a value this SDK does not know. */
export type ModelStateName = ContractModelStateName | 'unspecified';

/** A model version as the server sees it; `manifest` keeps the contract's full ModelInfo (input, outputs, encoder, training). */
export interface ModelInfo {
  name: string;
  version: number;
  kind: ModelKindName;
  tasks: string[];
  description: string;
  state: ModelStateName;
  stateMessage: string;
  provider: string;
  serving: boolean;
  sha256: string;
  createdAtUnixMs: number;
  manifest: ProtoModelInfo;
}

export interface EnrolInit extends CallInit {
  /** Display name; required for a new person. */
  name?: string;
  /** Existing (or chosen) person id; absent: the server assigns one. */
  personId?: string;
  /** Images with one clearly largest face each. */
  images: readonly ImageInput[];
}

export interface EnrolResult {
  personId: string;
  facesUsed: number;
  skipped: { imageIndex: number; code: string; message: string }[];
  person: Person | undefined;
}

export interface IdentifyInit extends CallInit {
  /** Matches per face. Default: the server's (5). */
  maxMatches?: number;
  /** Similarity threshold for `known`. Default: the server's. */
  threshold?: number;
}

export interface IdentifyResult {
  faces: { box: BoxPx; score: number; matches: IdentityResult[] }[];
  threshold: number;
}

export type HealthStatus = 'SERVING' | 'NOT_SERVING' | 'SERVICE_UNKNOWN' | 'UNKNOWN';

/** The models service: inspect the repository, load, unload and reload models at run time. */
export interface ModelsApi {
  list(task?: string, call?: CallInit): Promise<ModelInfo[]>;
  describe(name: string, version?: number, call?: CallInit): Promise<ModelInfo>;
  load(name: string, version?: number, call?: CallInit): Promise<ModelInfo>;
  unload(name: string, version?: number, call?: CallInit): Promise<ModelInfo[]>;
  /** Rescans the repository and swaps in new versions (of `name`, or of every model). */
  reload(name?: string, call?: CallInit): Promise<{ models: ModelInfo[]; failed: { name: string; version: number }[] }>;
}

/** The gallery service: enrol people and identify faces. */
export interface GalleryApi {
  enrol(init: EnrolInit): Promise<EnrolResult>;
  list(call?: CallInit): Promise<Person[]>;
  delete(personId: string, call?: CallInit): Promise<Person | undefined>;
  identify(image: ImageInput, init?: IdentifyInit): Promise<IdentifyResult>;
}

type UnaryCallback<Res> = (error: ServiceError | null, response: Res) => void;
type UnaryMethod<Req, Res> = (
  request: Req,
  metadata: Metadata,
  options: { deadline: Date },
  callback: UnaryCallback<Res>,
) => ClientUnaryCall;

function modelFromProto(m: ProtoModelInfo | undefined): ModelInfo {
  if (m === undefined) throw new InvalidInputError('the server answered without a model');
  return {
    name: m.name,
    version: m.version,
    kind: modelKinds.fromWire(m.kind) ?? 'unspecified',
    tasks: [...m.tasks],
    description: m.description,
    state: modelStates.fromWire(m.state) ?? 'unspecified',
    stateMessage: m.stateMessage,
    provider: m.provider,
    serving: m.serving,
    sha256: m.sha256,
    createdAtUnixMs: m.createdAtUnixMs,
    manifest: m,
  };
}

function credentialsOf(o: FaceAnalysisClientOptions): ChannelCredentials {
  if (o.tls === false) return credentials.createInsecure();
  const toBuffer = (b: Uint8Array | undefined): Buffer | null => (b === undefined ? null : Buffer.from(b));
  return credentials.createSsl(toBuffer(o.tls.rootCerts), toBuffer(o.tls.privateKey), toBuffer(o.tls.certChain));
}

/**
 * Adds `authorization: Bearer <token>` to every call's metadata. An interceptor rather than call credentials: grpc-js
 * refuses call credentials on a plain-text channel, and a token on loopback without TLS is a supported setup.
 */
function bearerTokenInterceptor(token: string): Interceptor {
  return (options, nextCall) =>
    new InterceptingCall(nextCall(options), {
      start: (metadata, listener, next) => {
        metadata.set('authorization', `Bearer ${token}`);
        next(metadata, listener);
      },
    });
}

/**
 * Client of a kt server. One HTTP/2 channel is shared by the face-analysis, models, gallery and health services.
 * Every failure is a typed error (see ./errors.ts); results are plain typed objects (see ./results.ts).
 */
export class FaceAnalysisClient {
  readonly address: string;
  readonly options: Readonly<FaceAnalysisClientOptions>;
  readonly models: ModelsApi;
  readonly gallery: GalleryApi;

  private readonly channel: Channel;
  private readonly analysis: GeneratedFaceAnalysisClient;
  private readonly modelsClient: GeneratedModelsClient;
  private readonly galleryClient: GeneratedGalleryClient;
  private readonly healthClient: GeneratedHealthClient;
  private readonly streams = new Set<AnalysisStream>();
  private closed = false;

  constructor(address: string, init: FaceAnalysisClientInit = {}) {
    if (typeof address !== 'string' || address.length === 0)
      throw new InvalidInputError('FaceAnalysisClient needs a server address, e.g. "127.0.0.1:50051"');
    this.address = address;
    this.options = Object.freeze(resolveClientOptions(init));
    const creds = credentialsOf(this.options);
    const channelOptions = channelOptionsOf(this.options);
    this.channel = new Channel(address, creds, channelOptions);
    // The interceptor goes on every generated client, so unary calls, streams and stream re-opens all carry the token.
    const shared = {
      ...channelOptions,
      channelOverride: this.channel,
      ...(this.options.token !== undefined ? { interceptors: [bearerTokenInterceptor(this.options.token)] } : {}),
    };
    this.analysis = new GeneratedFaceAnalysisClient(address, creds, shared);
    this.modelsClient = new GeneratedModelsClient(address, creds, shared);
    this.galleryClient = new GeneratedGalleryClient(address, creds, shared);
    this.healthClient = new GeneratedHealthClient(address, creds, shared);
    this.models = this.createModelsApi();
    this.gallery = this.createGalleryApi();
  }

  /** Analyses one frame (encoded bytes or raw pixels). Fails with a typed error (InvalidInputError for a bad frame, ...). */
  async analyze(image: ImageInput, init: AnalyzeInit = {}): Promise<AnalysisResult> {
    const request = AnalyzeRequest.fromPartial({
      frame: { image: imageToProto(image), sequence: init.sequence ?? 0, captureTimeUnixMs: init.captureTimeUnixMs ?? 0 },
      analysis: analysisToProto(init),
    });
    const response = await this.unary<AnalyzeRequest, AnalyzeResponse>(
      'Analyze',
      this.analysis.analyze.bind(this.analysis) as UnaryMethod<AnalyzeRequest, AnalyzeResponse>,
      request,
      init,
    );
    return frameResultFromProto(response.result);
  }

  /**
   * Streams frames for analysis and yields one result per analysed frame, in order. At most `maxInFlight` frames are
   * unanswered at any time; the server's 'drain' is respected; on UNAVAILABLE the stream re-opens with the same
   * config and continues with the next frames (see `counters.framesLost` / `reconnects`).
   */
  stream(frames: AsyncIterable<FrameInput | ImageInput> | Iterable<FrameInput | ImageInput>, init: StreamInit): AnalysisStream {
    this.assertOpen();
    const stream = new AnalysisStream(
      {
        openCall: (deadline) => this.openStreamCall(deadline),
        waitForReady: (deadline) => this.waitForReady(deadline),
        reconnect: this.options.reconnect,
        defaultFrameTimeoutMs: this.options.deadlineMs,
        onSettled: (settled) => this.streams.delete(settled),
      },
      frames,
      init,
    );
    this.streams.add(stream);
    return stream;
  }

  /** grpc.health.v1 Check of the whole server (`service` empty) or of one service ("kt.v1.FaceAnalysis"). */
  async health(service = '', call: CallInit = {}): Promise<HealthStatus> {
    const response = await this.unary<HealthCheckRequest, HealthCheckResponse>(
      'Health.Check',
      this.healthClient.check.bind(this.healthClient) as UnaryMethod<HealthCheckRequest, HealthCheckResponse>,
      HealthCheckRequest.fromPartial({ service }),
      call,
    );
    switch (response.status) {
      case HealthCheckResponse_ServingStatus.SERVING:
      case HealthCheckResponse_ServingStatus.NOT_SERVING:
      case HealthCheckResponse_ServingStatus.SERVICE_UNKNOWN:
        return response.status;
      default:
        return 'UNKNOWN';
    }
  }

  /** Resolves once health reports SERVING; rejects with UnavailableError after `timeoutMs`. */
  async waitUntilServing(timeoutMs = 30_000, service = ''): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last = 'no answer';
    while (Date.now() < deadline) {
      try {
        const status = await this.health(service, { deadlineMs: Math.max(100, Math.min(2000, deadline - Date.now())), waitForReady: true });
        if (status === 'SERVING') return;
        last = status;
      } catch (e) {
        last = e instanceof Error ? e.message : String(e);
      }
      await new Promise((resolve) => setTimeout(resolve, Math.min(200, Math.max(0, deadline - Date.now()))));
    }
    throw new UnavailableError(`server at ${this.address} not SERVING within ${timeoutMs} ms (${last})`);
  }

  /** Resolves when the channel is connected; rejects with UnavailableError at `deadline`. */
  waitForReady(deadline: Date): Promise<void> {
    return new Promise((resolve, reject) => {
      this.analysis.waitForReady(deadline, (error) => {
        if (error) reject(new UnavailableError(`server at ${this.address} not reachable: ${error.message}`, { cause: error }));
        else resolve();
      });
    });
  }

  /** Stops open streams and closes the channel. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const s of this.streams) s.stop();
    this.streams.clear();
    this.analysis.close();
    this.modelsClient.close();
    this.galleryClient.close();
    this.healthClient.close();
    this.channel.close();
  }

  // ---------------------------------------------------------------- internals

  private assertOpen(): void {
    if (this.closed) throw new UnavailableError(`client for ${this.address} is closed`);
  }

  private openStreamCall(deadline: Date | undefined): ClientDuplexStream<StreamRequest, StreamResponse> {
    this.assertOpen();
    return deadline ? this.analysis.streamAnalyze({ deadline }) : this.analysis.streamAnalyze();
  }

  private unary<Req, Res>(what: string, method: UnaryMethod<Req, Res>, request: Req, call: CallInit): Promise<Res> {
    this.assertOpen();
    const deadlineMs = call.deadlineMs ?? this.options.deadlineMs;
    const metadata = new Metadata();
    for (const [k, v] of Object.entries(call.metadata ?? {})) metadata.set(k, v);
    if (call.waitForReady) metadata.setOptions({ waitForReady: true });
    return new Promise<Res>((resolve, reject) => {
      method(request, metadata, { deadline: new Date(Date.now() + deadlineMs) }, (error, response) => {
        if (error) {
          const typed = errorFromStatus(error, what);
          reject(
            typed instanceof DeadlineExceededError
              ? new DeadlineExceededError(`${what}: no answer within ${deadlineMs} ms (${error.details})`, deadlineMs, { cause: error })
              : typed,
          );
        } else {
          resolve(response);
        }
      });
    });
  }

  private createModelsApi(): ModelsApi {
    const c = this.modelsClient;
    return {
      list: async (task = '', call = {}) => {
        const r = await this.unary<ListModelsRequest, ListModelsResponse>(
          'Models.ListModels',
          c.listModels.bind(c) as UnaryMethod<ListModelsRequest, ListModelsResponse>,
          ListModelsRequest.fromPartial({ task }),
          call,
        );
        return r.models.map(modelFromProto);
      },
      describe: async (name, version = 0, call = {}) => {
        const r = await this.unary<DescribeModelRequest, DescribeModelResponse>(
          'Models.DescribeModel',
          c.describeModel.bind(c) as UnaryMethod<DescribeModelRequest, DescribeModelResponse>,
          DescribeModelRequest.fromPartial({ name, version }),
          call,
        );
        return modelFromProto(r.model);
      },
      load: async (name, version = 0, call = {}) => {
        const r = await this.unary<LoadModelRequest, LoadModelResponse>(
          'Models.LoadModel',
          c.loadModel.bind(c) as UnaryMethod<LoadModelRequest, LoadModelResponse>,
          LoadModelRequest.fromPartial({ name, version }),
          call,
        );
        return modelFromProto(r.model);
      },
      unload: async (name, version = 0, call = {}) => {
        const r = await this.unary<UnloadModelRequest, UnloadModelResponse>(
          'Models.UnloadModel',
          c.unloadModel.bind(c) as UnaryMethod<UnloadModelRequest, UnloadModelResponse>,
          UnloadModelRequest.fromPartial({ name, version }),
          call,
        );
        return r.models.map(modelFromProto);
      },
      reload: async (name = '', call = {}) => {
        const r = await this.unary<ReloadModelRequest, ReloadModelResponse>(
          'Models.ReloadModel',
          c.reloadModel.bind(c) as UnaryMethod<ReloadModelRequest, ReloadModelResponse>,
          ReloadModelRequest.fromPartial({ name }),
          call,
        );
        return { models: r.models.map(modelFromProto), failed: r.failed.map((f) => ({ name: f.name, version: f.version })) };
      },
    };
  }

  private createGalleryApi(): GalleryApi {
    const c = this.galleryClient;
    return {
      enrol: async (init) => {
        if (!init.images || init.images.length === 0) throw new InvalidInputError('gallery.enrol needs at least one image');
        const request = EnrolRequest.fromPartial({
          name: init.name ?? '',
          personId: init.personId ?? '',
          images: init.images.map(imageToProto),
        });
        const r = await this.unary<EnrolRequest, EnrolResponse>(
          'Gallery.Enrol',
          c.enrol.bind(c) as UnaryMethod<EnrolRequest, EnrolResponse>,
          request,
          init,
        );
        return {
          personId: r.personId,
          facesUsed: r.facesUsed,
          skipped: r.skipped.map((s) => ({
            imageIndex: s.imageIndex,
            code: (s.error?.code ?? 'ERROR_CODE_UNKNOWN').replace(/^ERROR_CODE_/, ''),
            message: s.error?.message ?? '',
          })),
          person: r.person,
        };
      },
      list: async (call = {}) => {
        const r = await this.unary<ListPeopleRequest, ListPeopleResponse>(
          'Gallery.ListPeople',
          c.listPeople.bind(c) as UnaryMethod<ListPeopleRequest, ListPeopleResponse>,
          ListPeopleRequest.fromPartial({}),
          call,
        );
        return r.people;
      },
      delete: async (personId, call = {}) => {
        const r = await this.unary<DeletePersonRequest, DeletePersonResponse>(
          'Gallery.DeletePerson',
          c.deletePerson.bind(c) as UnaryMethod<DeletePersonRequest, DeletePersonResponse>,
          DeletePersonRequest.fromPartial({ personId }),
          call,
        );
        return r.person;
      },
      identify: async (image, init = {}) => {
        const request = IdentifyRequest.fromPartial({
          image: imageToProto(image),
          maxMatches: init.maxMatches ?? 0,
          threshold: init.threshold ?? 0,
        });
        const r = await this.unary<IdentifyRequest, IdentifyResponse>(
          'Gallery.Identify',
          c.identify.bind(c) as UnaryMethod<IdentifyRequest, IdentifyResponse>,
          request,
          init,
        );
        return {
          threshold: r.threshold,
          faces: r.faces.map((f) => ({
            box: { x: f.box?.xPx ?? 0, y: f.box?.yPx ?? 0, width: f.box?.widthPx ?? 0, height: f.box?.heightPx ?? 0 },
            score: f.score,
            matches: f.matches.map((m) => ({ known: m.known, personId: m.personId, name: m.name, similarity: m.similarity })),
          })),
        };
      },
    };
  }
}
