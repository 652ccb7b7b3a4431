// grpc.health.v1: per-service serving status with Check and Watch; NOT_SERVING until warm-up is done.
import { status as GrpcStatus, type ServerUnaryCall, type ServerWritableStream, type sendUnaryData } from '@grpc/grpc-js';
import {
  HealthCheckResponse,
  HealthCheckResponse_ServingStatus as ServingStatus,
  type HealthCheckRequest,
  type HealthServer,
} from '../gen/grpc/health/v1/health.js';

export { ServingStatus };

export class HealthState {
  private readonly statuses = new Map<string, ServingStatus>();
  private readonly watchers = new Map<string, Set<(s: ServingStatus) => void>>();
  private readonly watchCalls = new Set<ServerWritableStream<HealthCheckRequest, HealthCheckResponse>>();

  /** `services`: fully qualified names; '' (the server as a whole) is always present. */
  constructor(services: readonly string[], initial: ServingStatus = ServingStatus.NOT_SERVING) {
    for (const s of ['', ...services]) this.statuses.set(s, initial);
  }

  /** Sets every service's status (the server's status follows). */
  setAll(status: ServingStatus): void {
    for (const s of this.statuses.keys()) this.set(s, status);
  }

  set(service: string, status: ServingStatus): void {
    if (this.statuses.get(service) === status) return;
    this.statuses.set(service, status);
    for (const w of this.watchers.get(service) ?? []) w(status);
  }

  get(service: string): ServingStatus | undefined {
    return this.statuses.get(service);
  }

  /** The Health service implementation over this state. */
  service(): HealthServer {
    return {
      check: (call: ServerUnaryCall<HealthCheckRequest, HealthCheckResponse>, callback: sendUnaryData<HealthCheckResponse>) => {
        const status = this.statuses.get(call.request.service);
        if (status === undefined) {
          callback({ code: GrpcStatus.NOT_FOUND, details: `unknown service "${call.request.service}"` });
          return;
        }
        callback(null, HealthCheckResponse.fromPartial({ status }));
      },
      watch: (call: ServerWritableStream<HealthCheckRequest, HealthCheckResponse>) => {
        const service = call.request.service;
        const send = (status: ServingStatus): void => {
          call.write(HealthCheckResponse.fromPartial({ status }));
        };
        send(this.statuses.get(service) ?? ServingStatus.SERVICE_UNKNOWN);
        let set = this.watchers.get(service);
        if (!set) this.watchers.set(service, (set = new Set()));
        set.add(send);
        this.watchCalls.add(call);
        const stop = (): void => {
          set.delete(send);
          this.watchCalls.delete(call);
        };
        call.on('cancelled', stop);
        call.on('close', stop);
        call.on('error', stop);
      },
    };
  }

  /** Ends every Watch stream (at shutdown, after the last status was sent), so they do not hold the server open. */
  endWatches(): void {
    this.watchers.clear();
    for (const call of this.watchCalls) call.end();
    this.watchCalls.clear();
  }
}
