// Names of the kt.v1 enums as configs, manifests and the SDK spell them, with both directions of each table.
import type { ImageContainer, RawPixelFormat } from '../core/pixels.js';
import { ImageFormat, PixelFormat } from '../gen/kt/v1/common.js';
import { DropPolicy } from '../gen/kt/v1/face_analysis.js';
import { ModelKind, ModelState } from '../gen/kt/v1/models.js';

/** One enum's table: names in declaration order, name -> wire value, and wire value -> name. */
export interface WireTable<Name extends string, Wire extends string> {
  readonly names: readonly Name[];
  readonly toWire: Readonly<Record<Name, Wire>>;
  /** The name of a wire value; undefined for `*_UNSPECIFIED`, UNRECOGNIZED and values this build does not know. */
  fromWire(wire: Wire): Name | undefined;
  /** Whether `name` is one of this table's names (for untyped input). */
  has(name: unknown): name is Name;
}

function wireTable<Name extends string, Wire extends string>(toWire: Readonly<Record<Name, Wire>>): WireTable<Name, Wire> {
  const names = Object.keys(toWire) as Name[];
  const byWire = new Map<Wire, Name>(names.map((name) => [toWire[name], name]));
  return {
    names,
    toWire,
    fromWire: (wire) => byWire.get(wire),
    has: (name: unknown): name is Name => typeof name === 'string' && Object.hasOwn(toWire, name),
  };
}

/** Raw pixel layouts: the PixelFormat values without their prefix. */
export type PixelFormatName = RawPixelFormat;
export const pixelFormats: WireTable<PixelFormatName, PixelFormat> = wireTable<PixelFormatName, PixelFormat>({
  RGB8: PixelFormat.PIXEL_FORMAT_RGB8,
  BGR8: PixelFormat.PIXEL_FORMAT_BGR8,
  GRAY8: PixelFormat.PIXEL_FORMAT_GRAY8,
  RGBA8: PixelFormat.PIXEL_FORMAT_RGBA8,
  NV12: PixelFormat.PIXEL_FORMAT_NV12,
});

/** Declared containers of encoded images (IMAGE_FORMAT_UNSPECIFIED means "sniff the bytes"). */
export const imageContainers: WireTable<ImageContainer, ImageFormat> = wireTable<ImageContainer, ImageFormat>({
  jpeg: ImageFormat.IMAGE_FORMAT_JPEG,
  png: ImageFormat.IMAGE_FORMAT_PNG,
  webp: ImageFormat.IMAGE_FORMAT_WEBP,
});

/** What a stream does when frames arrive faster than they are analysed: the DropPolicy values without their prefix. */
export type DropPolicyName = 'LATEST_WINS' | 'QUEUE' | 'BLOCK';
export const dropPolicies: WireTable<DropPolicyName, DropPolicy> = wireTable<DropPolicyName, DropPolicy>({
  LATEST_WINS: DropPolicy.DROP_POLICY_LATEST_WINS,
  QUEUE: DropPolicy.DROP_POLICY_QUEUE,
  BLOCK: DropPolicy.DROP_POLICY_BLOCK,
});
export const dropPolicyNames: readonly DropPolicyName[] = dropPolicies.names;

/** Model kinds as model.json spells them. */
export type ModelKindName = 'detector' | 'prior' | 'baseline' | 'kt-adapter';
export const modelKinds: WireTable<ModelKindName, ModelKind> = wireTable<ModelKindName, ModelKind>({
  detector: ModelKind.MODEL_KIND_DETECTOR,
  prior: ModelKind.MODEL_KIND_PRIOR,
  baseline: ModelKind.MODEL_KIND_BASELINE,
  'kt-adapter': ModelKind.MODEL_KIND_KT_ADAPTER,
});

/** Life cycle of a model version in the server's registry. */
export type ModelStateName = 'unloaded' | 'loading' | 'loaded' | 'failed';
export const modelStates: WireTable<ModelStateName, ModelState> = wireTable<ModelStateName, ModelState>({
  unloaded: ModelState.MODEL_STATE_UNLOADED,
  loading: ModelState.MODEL_STATE_LOADING,
  loaded: ModelState.MODEL_STATE_LOADED,
  failed: ModelState.MODEL_STATE_FAILED,
});

/** MQTT quality of service of published events. */
export type MqttQos = 0 | 1 | 2;
