// Public surface of the serving layer: start a server, its config and device profiles, and the error mapping.
export { startServer, servedServices, type RunningServer, type StartServerOptions } from './server.js';
export {
  defaultServerConfig,
  defaultTaskModels,
  dropPolicyNames,
  resolveServerConfig,
  serverConfigKeys,
  taskNames,
  validateConfigOverlay,
  type DropPolicyName,
  type ServerConfig,
  type ServerConfigOverlay,
  type TaskName,
} from './config.js';
export { devicesDirectory, loadDeviceProfile, parseDeviceProfile, type DeviceProfile } from './device-profile.js';
export { toGrpcStatus, toItemError, toServiceError } from './status.js';
export { registerServeCommands } from './cli-serve.js';
export type { StatsSnapshotView } from './server-stats.js';
export type { ModelVersionView, ModelStateName } from './model-registry.js';
