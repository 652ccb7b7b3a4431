// gRPC server reflection (v1 and v1alpha) over proto-loader definitions of the contract in proto/.
import { fileURLToPath } from 'node:url';
import type { Server } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { ReflectionService } from '@grpc/reflection';

export const protoRoot = fileURLToPath(new URL('../../proto', import.meta.url));
export const protoFiles = ['kt/v1/common.proto', 'kt/v1/face_analysis.proto', 'kt/v1/models.proto', 'kt/v1/gallery.proto', 'grpc/health/v1/health.proto'];

/** Lets grpcurl, Postman and grpc-client-cli discover the services without the .proto files. */
export function addReflection(server: Server): void {
  const definitions = loadSync(protoFiles, { includeDirs: [protoRoot], keepCase: true, longs: Number, enums: String, defaults: true, oneofs: true });
  new ReflectionService(definitions).addToServer(server);
}
