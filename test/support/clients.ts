import type { DescService } from "@bufbuild/protobuf";
import { type Client, createClient, type Interceptor, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { createServerTransport } from "@zitadel/client/node";
import {
  createOrganizationServiceClient,
  createSessionServiceClient,
  createUserServiceClient,
} from "@zitadel/client/v2";
import { InternalPermissionService } from "@zitadel/proto/zitadel/internal_permission/v2beta/internal_permission_service_pb.js";
import { ManagementService } from "@zitadel/proto/zitadel/management_pb.js";
import { SettingsService } from "@zitadel/proto/zitadel/settings/v2/settings_service_pb.js";

// The three RPC protocols a ZITADEL client may speak. gRPC goes through the official
// @zitadel/client transport; gRPC-web and Connect through connect-node over HTTP/1.1.
export const protocols = ["grpc", "grpc-web", "connect"] as const;
export type Protocol = (typeof protocols)[number];

const bearer =
  (token: string): Interceptor =>
  (next) =>
  (req) => {
    if (token !== "") req.header.set("authorization", `Bearer ${token}`);
    return next(req);
  };

export function transport(baseUrl: string, token: string, protocol: Protocol): Transport {
  if (protocol === "grpc") return createServerTransport(token, { baseUrl });
  const options = { baseUrl, httpVersion: "1.1" as const, interceptors: [bearer(token)] };
  return protocol === "grpc-web" ? createGrpcWebTransport(options) : createConnectTransport(options);
}

export function clients(baseUrl: string, token: string, protocol: Protocol = "grpc") {
  const t = transport(baseUrl, token, protocol);
  return {
    users: createUserServiceClient(t),
    orgs: createOrganizationServiceClient(t),
    permissions: createClient(InternalPermissionService, t),
    sessions: createSessionServiceClient(t),
    settings: createClient(SettingsService, t),
    management: createClient(ManagementService, t),
    token,
  };
}

export type Clients = ReturnType<typeof clients>;

export function serviceClient<S extends DescService>(
  service: S,
  baseUrl: string,
  token: string,
  protocol: Protocol,
): Client<S> {
  return createClient(service, transport(baseUrl, token, protocol));
}

export interface RestResponse {
  readonly status: number;
  // biome-ignore lint/suspicious/noExplicitAny: JSON answers are asserted field by field.
  readonly body: any;
}

// Plain fetch against the REST paths, as curl would.
export async function rest(
  baseUrl: string,
  method: string,
  path: string,
  opts: { token?: string; body?: unknown; headers?: Record<string, string> } = {},
): Promise<RestResponse> {
  const headers: Record<string, string> = { ...opts.headers };
  if (opts.token) headers.authorization = `Bearer ${opts.token}`;
  if (opts.body !== undefined) headers["content-type"] ??= "application/json";
  const res = await fetch(`${baseUrl}${path}`, {
    method,
    headers,
    body:
      opts.body === undefined
        ? undefined
        : typeof opts.body === "string"
          ? opts.body
          : JSON.stringify(opts.body),
  });
  const text = await res.text();
  return { status: res.status, body: text === "" ? null : JSON.parse(text) };
}
