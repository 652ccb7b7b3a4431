// kt.v1.FaceAnalysis: Analyze (one frame, errors as status) and StreamAnalyze (per-frame errors inside the stream).
import type { ServerDuplexStream, ServerUnaryCall, sendUnaryData } from '@grpc/grpc-js';
import { errorMessage } from '../core/errors.js';
import {
  AnalyzeResponse,
  type AnalyzeRequest,
  type FaceAnalysisServer,
  type StreamRequest,
  type StreamResponse,
} from '../gen/kt/v1/face_analysis.js';
import { unaryStreamId } from '../contract/stream-id.js';
import { planAnalysis } from './analysis-plan.js';
import { facesEventOf } from './faces-event.js';
import type { ServingContext } from './serving-context.js';
import { notServingError, toServiceError } from './status.js';
import { StreamSession } from './stream-session.js';

export { unaryStreamId };

export function faceAnalysisService(ctx: ServingContext): FaceAnalysisServer {
  return {
    analyze: (call: ServerUnaryCall<AnalyzeRequest, AnalyzeResponse>, callback: sendUnaryData<AnalyzeResponse>) => {
      const receivedAtMs = Date.now();
      ctx.stats.unaryCalls += 1;
      const work = async (): Promise<AnalyzeResponse> => {
        if (!ctx.serving()) throw notServingError();
        const plan = planAnalysis(call.request.analysis, ctx.config, ctx.registry);
        const frame = call.request.frame ?? { sequence: 0, captureTimeUnixMs: 0 };
        // Validation above runs before queueing, so a bad request never waits for a slot.
        const result = await ctx.unary.run(() => ctx.pipeline.analyze(frame, plan, 0));
        ctx.stats.framesAnalyzed += 1;
        ctx.stats.recordLatency(Date.now() - receivedAtMs);
        if (result.faces.length > 0) ctx.events?.publishFaces(unaryStreamId, facesEventOf(result, receivedAtMs));
        return AnalyzeResponse.fromPartial({ result });
      };
      work().then(
        (response) => callback(null, response),
        (e: unknown) => {
          ctx.stats.unaryFailed += 1;
          ctx.log.debug({ peer: call.getPeer(), error: errorMessage(e) }, 'Analyze failed');
          callback(toServiceError(e));
        },
      );
    },
    streamAnalyze: (call: ServerDuplexStream<StreamRequest, StreamResponse>) => {
      new StreamSession(ctx, call).start();
    },
  };
}
