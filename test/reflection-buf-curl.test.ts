// Reflection as a strict outside client sees it: `buf curl` lists, resolves and calls every service with no .proto files.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { createFileRegistry, fromBinary } from '@bufbuild/protobuf';
import { FileDescriptorProtoSchema, type FileDescriptorProto } from '@bufbuild/protobuf/wkt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningServer } from '../src/server/server.js';
import { repoRoot } from './helpers/cli.js';
import { startTestServer } from './helpers/server-fixture.js';

const bufBin = fileURLToPath(new URL('../node_modules/.bin/buf', import.meta.url));
const demoPhoto = fileURLToPath(new URL('../node_modules/@vladmandic/face-api/demo/sample1.jpg', import.meta.url));
const reflectionProtocols = ['grpc-v1', 'grpc-v1alpha'] as const;
const services = ['kt.v1.FaceAnalysis', 'kt.v1.Models', 'kt.v1.Gallery', 'grpc.health.v1.Health'];

let server: RunningServer;
let baseUrl: string;

beforeAll(async () => {
  server = await startTestServer({ reflection: true });
  baseUrl = `http://${server.address}`;
});

afterAll(async () => {
  await server?.close();
});

/** Runs buf with the request body on stdin (a base64 photo is too long for an argument). */
function runBuf(args: string[], stdin = ''): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(bufBin, args, { cwd: repoRoot, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(stdin);
  });
}

function bufCurl(protocol: string, ...args: string[]): string[] {
  return ['curl', '--protocol', 'grpc', '--http2-prior-knowledge', '--reflect-protocol', protocol, ...args];
}

describe.each(reflectionProtocols)('buf curl through reflection (%s)', (protocol) => {
  it('lists the services', async () => {
    const run = await runBuf(bufCurl(protocol, '--list-services', baseUrl));
    expect(run.stderr).toBe('');
    expect(run.stdout.trim().split('\n')).toEqual(expect.arrayContaining(services));
  });

  it('lists the methods of every service', async () => {
    const run = await runBuf(bufCurl(protocol, '--list-methods', baseUrl));
    expect(run.stderr).toBe('');
    const methods = run.stdout.trim().split('\n');
    expect(methods).toEqual(
      expect.arrayContaining([
        'kt.v1.FaceAnalysis/Analyze',
        'kt.v1.FaceAnalysis/StreamAnalyze',
        'kt.v1.Models/ListModels',
        'kt.v1.Models/DescribeModel',
        'kt.v1.Models/LoadModel',
        'kt.v1.Models/UnloadModel',
        'kt.v1.Models/ReloadModel',
        'kt.v1.Gallery/Enrol',
        'kt.v1.Gallery/ListPeople',
        'kt.v1.Gallery/DeletePerson',
        'kt.v1.Gallery/Identify',
        'grpc.health.v1.Health/Check',
      ]),
    );
  });

  it('calls Analyze with a demo photo as JSON and gets three faces with their tasks', async () => {
    const body = JSON.stringify({
      frame: { image: { encoded: { data: readFileSync(demoPhoto).toString('base64') } }, sequence: 7 },
      analysis: { tasks: ['TASK_AGE', 'TASK_GENDER', 'TASK_EMOTION'] },
    });
    const run = await runBuf(bufCurl(protocol, '--data', '@-', `${baseUrl}/kt.v1.FaceAnalysis/Analyze`), body);
    expect(run.stderr).toBe('');
    const answer = JSON.parse(run.stdout) as {
      result: { sequence: string; faces: { age?: { years: number }; gender?: { label: string }; emotion?: { label: string } }[] };
    };
    expect(answer.result.sequence).toBe('7');
    expect(answer.result.faces).toHaveLength(3);
    for (const face of answer.result.faces) {
      expect(face.age?.years).toBeGreaterThan(0);
      expect(['female', 'male']).toContain(face.gender?.label);
      expect(face.emotion?.label).toMatch(/\w+/);
    }
  });

  it('calls a Models method (ListModels) by reflection only', async () => {
    const run = await runBuf(bufCurl(protocol, `${baseUrl}/kt.v1.Models/ListModels`));
    expect(run.stderr).toBe('');
    const answer = JSON.parse(run.stdout) as { models: { name: string }[] };
    expect(answer.models.map((m) => m.name)).toContain('blazeface');
  });
});

type ReflectionAnswer = { file_descriptor_response?: { file_descriptor_proto: Buffer[] }; error_response?: { error_message: string } };

/** One file_containing_symbol request over raw reflection: what `grpcurl describe` and Postman do first. */
async function fileContainingSymbol(version: 'v1' | 'v1alpha', symbol: string): Promise<FileDescriptorProto[]> {
  const reflectionProto = fileURLToPath(new URL('../node_modules/@grpc/reflection/build/proto', import.meta.url));
  const definition = protoLoader.loadSync(`grpc/reflection/${version}/reflection.proto`, {
    includeDirs: [reflectionProto],
    keepCase: true,
    oneofs: true,
  });
  const pkg = grpc.loadPackageDefinition(definition) as unknown as {
    grpc: { reflection: Record<string, { ServerReflection: grpc.ServiceClientConstructor }> };
  };
  const client = new pkg.grpc.reflection[version]!.ServerReflection(server.address, grpc.credentials.createInsecure());
  const stream = client['ServerReflectionInfo']!() as grpc.ClientDuplexStream<object, ReflectionAnswer>;
  const answer = await new Promise<ReflectionAnswer>((resolve, reject) => {
    stream.on('data', resolve);
    stream.on('error', reject);
    stream.write({ file_containing_symbol: symbol });
  });
  stream.end();
  client.close();
  if (!answer.file_descriptor_response) throw new Error(`reflection error: ${answer.error_response?.error_message}`);
  return answer.file_descriptor_response.file_descriptor_proto.map((bytes) => fromBinary(FileDescriptorProtoSchema, bytes));
}

describe.each(['v1', 'v1alpha'] as const)('describe through raw reflection (%s)', (version) => {
  it.each(services)('%s comes with every file it imports, under the names it imports them by', async (service) => {
    const files = await fileContainingSymbol(version, service);
    const names = files.map((f) => f.name);
    for (const file of files) expect(names).toEqual(expect.arrayContaining(file.dependency));
    // Building a registry resolves every type reference strictly, as Go's protodesc (buf, grpcurl) does.
    const registry = createFileRegistry(files[0]!, (name) => files.find((f) => f.name === name));
    const described = registry.getService(service);
    expect(described?.methods.length).toBeGreaterThan(0);
  });

  it('keeps the contract comments (what a describe shows)', async () => {
    const files = await fileContainingSymbol(version, 'kt.v1.FaceAnalysis');
    expect(files[0]!.name).toBe('kt/v1/face_analysis.proto');
    expect(files[0]!.dependency).toEqual(['kt/v1/common.proto']);
    const comments = files[0]!.sourceCodeInfo?.location.map((l) => l.leadingComments).join('\n') ?? '';
    expect(comments).toMatch(/task/i);
  });
});
