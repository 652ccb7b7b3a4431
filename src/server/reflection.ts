// gRPC server reflection (v1 and v1alpha) serving the contract exactly as buf compiled it (src/gen/descriptor-set.ts).
import { fileURLToPath } from 'node:url';
import type { Server } from '@grpc/grpc-js';
import { loadFileDescriptorSetFromBuffer, type PackageDefinition } from '@grpc/proto-loader';
import { ReflectionService } from '@grpc/reflection';
import { fromBinary, toBinary } from '@bufbuild/protobuf';
import { FileDescriptorProtoSchema, FileDescriptorSetSchema } from '@bufbuild/protobuf/wkt';
import { contractDescriptorSetBase64 } from '../gen/descriptor-set.js';

export const protoRoot = fileURLToPath(new URL('../../proto', import.meta.url));
export const protoFiles = [
  'kt/v1/common.proto',
  'kt/v1/face_analysis.proto',
  'kt/v1/models.proto',
  'kt/v1/gallery.proto',
  'grpc/health/v1/health.proto',
];

/** Lets grpcurl, buf curl, Postman and grpc-client-cli discover and call the services without the .proto files. */
export function addReflection(server: Server): void {
  new ReflectionService(compiledContractDefinition()).addToServer(server);
}

/**
 * A package definition whose descriptors are the compiled .proto files themselves.
 *
 * proto-loader re-synthesises descriptors from its protobufjs root: one file per package (`kt_v1.proto`, which
 * nothing imports), relative type names, and map entries named after the field (`Metrics` instead of
 * `MetricsEntry`). Strict clients (buf curl, anything built on Go's protodesc) reject such a file and then
 * report `failed to find service named "kt.v1.FaceAnalysis"`. @grpc/reflection serves whatever each
 * definition's `fileDescriptorProtos` holds, so those are replaced by the files buf compiled: one per .proto
 * file, under its import path, with its imports and its comments.
 */
export function compiledContractDefinition(): PackageDefinition {
  const setBytes = Buffer.from(contractDescriptorSetBase64, 'base64');
  const files = fromBinary(FileDescriptorSetSchema, setBytes).file.map((file) => Buffer.from(toBinary(FileDescriptorProtoSchema, file)));
  const definition = loadFileDescriptorSetFromBuffer(setBytes, {
    keepCase: true,
    longs: Number,
    enums: String,
    defaults: true,
    oneofs: true,
  });
  for (const entry of Object.values(definition)) {
    if ('fileDescriptorProtos' in entry) entry.fileDescriptorProtos = files;
  }
  return definition;
}
