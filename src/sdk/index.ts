// The SDK's public surface, exported by hand: the client, its options, typed results and errors, and the plugin SDK.
export { FaceAnalysisClient } from './client.js';
export type {
  AnalyzeInit,
  CallInit,
  EnrolInit,
  EnrolResult,
  GalleryApi,
  HealthStatus,
  IdentifyInit,
  IdentifyResult,
  ModelInfo,
  ModelKindName,
  ModelStateName,
  ModelsApi,
} from './client.js';
export { AnalysisStream } from './analysis-stream.js';
export type { StreamEvent, StreamInit, StreamState } from './analysis-stream.js';
export { defaultClientOptions, resolveClientOptions } from './client-options.js';
export type {
  ClientKeepaliveOptions,
  ClientReconnectOptions,
  ClientTlsOptions,
  FaceAnalysisClientInit,
  FaceAnalysisClientOptions,
} from './client-options.js';
export {
  DeadlineExceededError,
  FailedPreconditionError,
  PermissionDeniedError,
  RpcError,
  UnauthenticatedError,
  UnavailableError,
  UnimplementedError,
  errorFromStatus,
  grpcCodeOf,
  grpcStatusName,
  isDeadlineExceededError,
  isRpcError,
  isUnavailableError,
} from './errors.js';
export { AlreadyExistsError, InvalidInputError, KtError, NotFoundError, ResourceExhaustedError, isKtError } from '../core/errors.js';
export { defaultTasks, facesEventOfResult, resultToFacesEvent, taskNames } from './results.js';
export type { FacesEvent, FacesMessage } from '../contract/face-events.js';
export { createBasicLogger, silentLogger } from '../core/log-types.js';
export type { LogFields, LogFn, LogLevel, Logger } from '../core/log-types.js';
export type {
  AnalysisInit,
  AnalysisResult,
  BoxPx,
  DropPolicyName,
  FaceResult,
  FacesEventJson,
  FrameError,
  FrameInput,
  IdentityResult,
  ImageInput,
  LandmarkSet,
  PointPx,
  RawImageInput,
  RawPixelFormatName,
  StreamCountersView,
  StreamResult,
  TaskAnswerAge,
  TaskName,
  TimingsMs,
  TrackEvent,
  TrackSummary,
} from './results.js';
export type { OnOffName, ReuseInit, TrackingInit } from './tracking-init.js';
export type { TrackEventTypeName } from '../contract/track-names.js';
export {
  PluginOptionError,
  PluginRegistry,
  PluginRunner,
  Type,
  definePlugin,
  isPluginFactory,
  isPluginOptionError,
  pluginKinds,
} from './plugin.js';
export type {
  AnyPluginFactory,
  CameraStateEvent,
  EmittedFrame,
  FilterContext,
  FilterInstance,
  FrameVerdict,
  GatewayEvent,
  Plugin,
  PluginDefinition,
  PluginFactory,
  PluginHealth,
  PluginInit,
  PluginInstance,
  PluginInstanceOfKind,
  PluginKind,
  PluginLifecycle,
  PluginResultContext,
  PluginRunnerStats,
  PluginState,
  ResultVerdict,
  SinkInstance,
  SourceContext,
  SourceFrame,
  SourceInstance,
  Static,
  TObject,
  TSchema,
} from './plugin.js';
export { PluginHost, runFrameFilters, runResultFilters } from './plugin-host.js';
export type { FrameFilterOutcome, PluginHostHealth, PluginHostOptions, ResultFilterOutcome, SourceTarget } from './plugin-host.js';
export { loadPlugin } from './plugin-loader.js';
export type { LoadPluginOptions } from './plugin-loader.js';
export { webhookPlugin } from './plugin-webhook.js';
export type { WebhookOptions } from './plugin-webhook.js';
export { mqttForwardPlugin } from './plugin-mqtt-forward.js';
export type { MqttForwardOptions } from './plugin-mqtt-forward.js';
export { jsonlPlugin } from './plugin-jsonl.js';
export type { JsonlOptions } from './plugin-jsonl.js';
export { registerBuiltinPlugins } from './plugin-builtins.js';
