// Public surface of the face-model zoo: manifests, the repository, the install-time build, running models.
export type { ModelManifest, InputSpec, OutputSpec, OutputDecoding, EncoderSpec, ModelKind, FaceTask, ModelSource } from './manifest.js';
export { listRepository, resolveModel, readManifest, defaultRepositoryPath, versionDir, type RepositoryEntry } from './repository.js';
export { buildRepository, packageInfo, ENCODER_TENSOR, type BuildOptions, type BuildReport } from './build.js';
export { zoo, type ZooEntry } from './zoo.js';
export { loadModel, detectFaces, prepareFaceBatch, runTaskModel, type LoadedModel, type TaskRun } from './runner.js';
export { cutAtEncoder, type EncoderCut } from './encoder-cut.js';
export * as processing from './processing/index.js';
