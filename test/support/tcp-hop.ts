// A TCP hop between Latchkey and PostgreSQL that a test can cut and restore, without touching
// the PostgreSQL server that others on the machine share.
import net from "node:net";

export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

// A TCP hop between the store and PostgreSQL that a test can cut (the server is gone: refused
// connections), freeze (the server is silent: no answer, no reset) and bring back.
export class Hop {
  private server: net.Server | null = null;
  private readonly links = new Set<{ client: net.Socket; upstream: net.Socket; frozen: boolean }>();

  private constructor(
    readonly port: number,
    private readonly target: { host: string; port: number },
  ) {}

  static async open(target: { host: string; port: number }): Promise<Hop> {
    const hop = new Hop(await freePort(), target);
    await hop.up();
    return hop;
  }

  // A hop in front of the server a PostgreSQL URL names.
  static inFrontOf(url: string): Promise<Hop> {
    const u = new URL(url);
    return Hop.open({ host: u.hostname, port: Number(u.port || 5432) });
  }

  async up(): Promise<void> {
    const server = net.createServer((client) => {
      const upstream = net.connect(this.target.port, this.target.host);
      const link = { client, upstream, frozen: false };
      this.links.add(link);
      client.on("data", (d) => link.frozen || upstream.write(d));
      upstream.on("data", (d) => link.frozen || client.write(d));
      const drop = () => {
        client.destroy();
        upstream.destroy();
        this.links.delete(link);
      };
      for (const s of [client, upstream]) {
        s.on("close", drop);
        s.on("error", drop);
      }
    });
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(this.port, "127.0.0.1", resolve);
    });
    this.server = server;
  }

  async down(): Promise<void> {
    for (const l of this.links) {
      l.client.destroy();
      l.upstream.destroy();
    }
    const server = this.server;
    this.server = null;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  // Existing connections go silent; new ones work.
  freeze(): void {
    for (const l of this.links) l.frozen = true;
  }

  // The same URL (user, database, options), through the hop.
  via(url: string): string {
    const u = new URL(url);
    u.hostname = "127.0.0.1";
    u.port = String(this.port);
    return u.toString();
  }
}
