// Built-in filter `fps`: caps the frames per second sent to the server (frames closer together are dropped as "fps").
import { Type, type TSchema } from '@sinclair/typebox';
import { definePlugin, type PluginFactory } from '../../sdk/plugin.js';

export interface FpsFilterOptions {
  /** Most frames per second passed on. Default 5. */
  maxFps: number;
}

export const fpsFilter: PluginFactory<FpsFilterOptions, 'filter'> = definePlugin<FpsFilterOptions, 'filter'>({
  name: 'fps',
  kind: 'filter',
  description: 'caps the frames per second sent to the server',
  schema: Type.Object(
    {
      maxFps: Type.Number({ exclusiveMinimum: 0, maximum: 240, default: 5, description: 'Most frames per second passed on. Default 5.' }),
    } satisfies Record<keyof FpsFilterOptions, TSchema>,
    { additionalProperties: false, title: 'fps filter options' },
  ),
  create({ options: o }) {
    const periodMs = 1000 / o.maxFps;
    let lastPassedMs = -Infinity;
    let passed = 0;
    let dropped = 0;
    return {
      onFrame(frame) {
        // A little slack (5 %) so that a source running at exactly maxFps is not halved by timer jitter.
        if (frame.captureTimeUnixMs - lastPassedMs < periodMs * 0.95) {
          dropped += 1;
          return { drop: 'fps' };
        }
        lastPassedMs = frame.captureTimeUnixMs;
        passed += 1;
        return undefined;
      },
      stats: () => ({ passed, dropped }),
    };
  },
});
