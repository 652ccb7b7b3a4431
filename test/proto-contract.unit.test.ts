// Contract test without a server: the generated ts-proto service definitions match what @grpc/proto-loader reads.
import { fileURLToPath } from 'node:url';
import * as protoLoader from '@grpc/proto-loader';
import { describe, expect, it } from 'vitest';
import { FaceAnalysisService } from '../src/gen/kt/v1/face_analysis.js';
import { ModelsService } from '../src/gen/kt/v1/models.js';
import { GalleryService } from '../src/gen/kt/v1/gallery.js';
import { HealthService } from '../src/gen/grpc/health/v1/health.js';

const protoRoot = fileURLToPath(new URL('../proto', import.meta.url));
const protoFiles = ['kt/v1/face_analysis.proto', 'kt/v1/models.proto', 'kt/v1/gallery.proto', 'grpc/health/v1/health.proto'];

describe('kt.v1 gRPC contract', () => {
  it('generated service definitions match what proto-loader reads from the .proto files', () => {
    // The options a plain Node gRPC user would pick (as in proto-contract.test.ts).
    const loaderOptions = { keepCase: false, longs: Number, enums: String, defaults: true, oneofs: true, includeDirs: [protoRoot] };
    const packageDefinition = protoLoader.loadSync(protoFiles, loaderOptions);
    const generated = {
      'kt.v1.FaceAnalysis': FaceAnalysisService,
      'kt.v1.Models': ModelsService,
      'kt.v1.Gallery': GalleryService,
      'grpc.health.v1.Health': HealthService,
    };
    for (const [serviceName, definition] of Object.entries(generated)) {
      const fromLoader = packageDefinition[serviceName] as protoLoader.ServiceDefinition | undefined;
      expect(fromLoader, serviceName).toBeDefined();
      const shape = (methods: Record<string, { path: string; requestStream: boolean; responseStream: boolean }>) =>
        Object.values(methods)
          .map(({ path, requestStream, responseStream }) => ({ path, requestStream, responseStream }))
          .sort((a, b) => a.path.localeCompare(b.path));
      expect(shape(definition), serviceName).toEqual(shape(fromLoader ?? {}));
    }
    expect(Object.keys(ModelsService).sort()).toEqual(['describeModel', 'listModels', 'loadModel', 'reloadModel', 'unloadModel']);
    expect(Object.keys(GalleryService).sort()).toEqual(['deletePerson', 'enrol', 'identify', 'listPeople']);
  });
});
