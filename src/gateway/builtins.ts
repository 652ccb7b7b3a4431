// Registers the gateway's built-in sources and filters (and the SDK's sinks) explicitly, at the gateway's entry point.
import { PluginRegistry } from '../sdk/plugin.js';
import { registerBuiltinPlugins } from '../sdk/plugin-builtins.js';
import { fpsFilter } from './filters/fps.js';
import { motionFilter } from './filters/motion.js';
import { minFaceSizeFilter, zonesFilter } from './filters/zones.js';
import { snapshotSink } from './sinks/snapshot.js';
import { folderSource, snapshotSource } from './sources/folder.js';
import { fileSource, httpSource, rtspSource, v4l2Source } from './sources/video.js';

/** A registry with every built-in plugin: sources rtsp, http, v4l2, file, folder, snapshot; filters fps, motion, zones, min-face-size; the snapshot sink and the SDK's sinks. */
export function gatewayRegistry(registry: PluginRegistry = new PluginRegistry()): PluginRegistry {
  registerBuiltinPlugins(registry);
  registry.register(rtspSource);
  registry.register(httpSource);
  registry.register(v4l2Source);
  registry.register(fileSource);
  registry.register(folderSource);
  registry.register(snapshotSource);
  registry.register(fpsFilter, ['fps-cap']);
  registry.register(motionFilter, ['motion-gate']);
  registry.register(zonesFilter);
  registry.register(minFaceSizeFilter);
  registry.register(snapshotSink);
  return registry;
}
