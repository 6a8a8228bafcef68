// Type declarations for the flaghook package (CommonJS).

/** A JSON value as the package writes it: BigInt for int64, Float for a whole float. */
export type JsonValue =
  | null
  | boolean
  | number
  | bigint
  | string
  | Float
  | Date
  | JsonValue[]
  | { [key: string]: JsonValue | undefined };

/** An event: the payload ({event_type, data}) plus the routing ids it needs. */
export interface FlaghookEvent {
  event_type: 'FLAG_UPDATED' | 'FLAG_DELETED' | 'AUDIT_LOG_CREATED' | 'NEW_VERSION_PUBLISHED';
  data: { [key: string]: JsonValue | undefined };
  environment_id?: number | bigint;
  organisation_id?: number | bigint;
}

export type EventInput = FlaghookEvent | string | Buffer;
export type Bytes = Buffer | Uint8Array | string;

export interface RenderOptions {
  profile?: 'flagsmith' | 'flagsmith_2020' | 'bullet_train';
  compact?: boolean;
  max_body_bytes?: number;
  maxBodyBytes?: number;
}

/** An error from libflaghook. */
export class FlaghookError extends Error {
  /** The negative FLAGHOOK_E* value. */
  readonly code: number;
  /** "FLAGHOOK_EINVAL", ... */
  readonly codeName: string;
  /** The library's detail ("$.data.new_state.feature.name: is missing"); never a secret. */
  readonly detail: string;
  /** FLAGHOOK_EDELIVERY from a SYNC emit: every endpoint's result record. */
  readonly results?: ResultRecord[];
}

/** A number written as a float even when whole: new Float(50) -> 50.0. */
export class Float {
  constructor(value: number);
  readonly value: number;
}

export function load(options?: { library?: string }): void;
export function render(event: EventInput, options?: RenderOptions): Buffer;
export function sign(secret: Bytes, body: Bytes): string;
export function verify(secret: Bytes, body: Bytes, signature: Bytes): boolean;
export function standardSign(secret: string, msgId: string, timestamp: number | bigint | string, body: Bytes): string;
export function standardVerify(
  secrets: string | string[],
  msgId: string,
  timestamp: number | bigint | string,
  signature: string,
  body: Bytes,
  options?: { now?: number | bigint; tolerance?: number | bigint }
): boolean;
export function stringify(value: unknown): string;
export function parse(text: string, options?: { bigintKeys?: string[]; floats?: 'wrap' }): any;
export function version(): string;
export function versionNumber(): number;
export function strerror(code: number): string;
export function libraryPath(): string;
export const constants: Readonly<Record<string, number>>;

export interface ResultRecord {
  kind: 'result';
  endpoint_id: bigint;
  event_id: string;
  event_type: string;
  outcome: string;
  status: number;
  errclass: string;
  attempts: number;
  elapsed_us: number;
  error: string;
  response: string;
}
export interface DisabledRecord {
  kind: 'disabled';
  endpoint_id: bigint;
  reason: 'gone' | 'failing';
}
export interface LogRecord {
  kind: 'log';
  level: string;
  message: string;
}
export type QueueRecord = ResultRecord | DisabledRecord | LogRecord;

/** flaghook_client_options by their C names; result_queue is always on. */
export interface ClientOptions {
  mode?: 'sync' | 'async';
  allow_private?: boolean;
  allow_cidrs?: string[];
  threads?: number;
  max_pending?: number;
  emit_wait_ms?: number;
  timeout_ms?: number;
  connect_timeout_ms?: number;
  shutdown_timeout_ms?: number;
  retry?: {
    kind?: 'flagsmith' | 'standard';
    schedule_ms?: number[];
    max_attempts?: number;
    jitter_percent?: number;
    retry_after_cap_ms?: number;
  };
  log_level?: 'error' | 'warn' | 'info' | 'debug';
  [option: string]: unknown;
}

/** flaghook_endpoint_options by name. */
export interface EndpointOptions {
  url: string;
  /** A string: its UTF-8 bytes.  A Buffer: sent as "secret_hex". */
  secret?: string | Buffer | Uint8Array | null;
  events?: FlaghookEvent['event_type'][];
  scope?: 'environment' | 'organisation';
  scope_id?: number | bigint;
  id?: number | bigint;
  standard_secrets?: string[];
  [option: string]: unknown;
}

export class Client {
  constructor(options?: ClientOptions);
  readonly mode: 'sync' | 'async';
  /** True once close() or closeAsync() has been called. */
  readonly closed: boolean;
  addEndpoint(options: EndpointOptions): bigint;
  removeEndpoint(id: bigint | number): void;
  setEndpointEnabled(id: bigint | number, enabled: boolean): void;
  /** SYNC: the result records of every matching endpoint.  ASYNC: undefined. */
  emit(event: EventInput): ResultRecord[] | undefined;
  emitAsync(event: EventInput): Promise<ResultRecord[] | undefined>;
  flush(timeoutMs?: number): boolean;
  flushAsync(timeoutMs?: number): Promise<boolean>;
  stats(): { client: Record<string, number>; endpoints: Array<Record<string, number | boolean> & { id: bigint }> };
  metrics(): string;
  takeResult(): QueueRecord | null;
  nextResult(timeoutMs?: number): Promise<QueueRecord | null>;
  results(): AsyncIterableIterator<QueueRecord>;
  [Symbol.asyncIterator](): AsyncIterableIterator<QueueRecord>;
  on(name: 'record', listener: (r: QueueRecord) => void): this;
  on(name: 'result', listener: (r: ResultRecord) => void): this;
  on(name: 'disabled', listener: (r: DisabledRecord) => void): this;
  on(name: 'log', listener: (r: LogRecord) => void): this;
  once(name: string, listener: (r: any) => void): this;
  off(name: string, listener: (r: any) => void): this;
  addListener(name: string, listener: (r: any) => void): this;
  removeListener(name: string, listener: (r: any) => void): this;
  removeAllListeners(name?: string): this;
  listenerCount(name: string): number;
  /** The records read at the end (they also go to listeners and iterators). */
  close(): QueueRecord[];
  closeAsync(): Promise<QueueRecord[]>;
}
