import BasaltClient
import BasaltTesting
import Foundation
import Synchronization

/// An app's enum in a filter: its raw value is the literal.
enum PostStatus: String, FilterLiteral {
    case draft, published
}

/// The default transport, observed: every answer's method, path and status is counted. Requests
/// go to the real server unchanged.
final class CountingTransport: BasaltTransport {
    let inner = AsyncHTTPClientTransport()
    let seen = Mutex<[String]>([])

    func send(_ request: TransportRequest) async throws -> TransportResponse {
        let response = try await inner.send(request)
        seen.withLock { $0.append("\(request.method) \(request.url.path) \(response.status)") }
        return response
    }

    func stream(_ request: TransportRequest) async throws -> (TransportResponse, AsyncThrowingStream<Data, any Error>) {
        try await inner.stream(request)
    }

    func count(_ prefix: String) -> Int { seen.withLock { $0.filter { $0.hasPrefix(prefix) }.count } }
    func count(status: Int) -> Int { seen.withLock { $0.filter { $0.hasSuffix(" \(status)") }.count } }
}

/// A TCP proxy in front of the server (a Python process) that breaks connections for real:
/// it drops the connection carrying the answer to the next `dropPosts` POSTs (the server did
/// the work; the client never hears of it), and cuts every open connection when asked.
final class DroppingProxy: Sendable {
    let process: ChildProcess
    let port: Int
    let controlPort: Int

    static let script = #"""
        import asyncio, os, sys
        port_file, upstream, drops = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
        state = {"drops": drops}
        open_pairs = set()

        async def pipe(reader, writer, inspect):
            try:
                while True:
                    data = await reader.read(65536)
                    if not data:
                        break
                    if inspect(data):
                        return
                    writer.write(data)
                    await writer.drain()
            except Exception:
                pass
            finally:
                writer.transport.abort()

        async def handle(client_reader, client_writer):
            upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", upstream)
            pair = (client_writer, upstream_writer)
            open_pairs.add(pair)
            pending = {"post": False}

            def request(data):
                if data.startswith(b"POST /v1/") and state["drops"] > 0:
                    pending["post"] = True
                return False

            def answer(data):
                if pending["post"]:
                    pending["post"] = False
                    state["drops"] -= 1
                    client_writer.transport.abort()
                    return True
                return False

            await asyncio.gather(pipe(client_reader, upstream_writer, request), pipe(upstream_reader, client_writer, answer))
            open_pairs.discard(pair)

        async def control(reader, writer):
            for c, u in list(open_pairs):
                c.transport.abort()
                u.transport.abort()
            writer.write(b"%d" % state["drops"])
            await writer.drain()
            writer.close()

        async def orphaned():
            # Gone with the test process, however that ends.
            parent = os.getppid()
            while os.getppid() == parent:
                await asyncio.sleep(0.5)
            os._exit(0)

        async def main():
            asyncio.ensure_future(orphaned())
            server = await asyncio.start_server(handle, "127.0.0.1", 0)
            ctl = await asyncio.start_server(control, "127.0.0.1", 0)
            with open(port_file + ".tmp", "w") as f:
                f.write("%d %d" % (server.sockets[0].getsockname()[1], ctl.sockets[0].getsockname()[1]))
            os.rename(port_file + ".tmp", port_file)
            await asyncio.Event().wait()

        asyncio.run(main())
        """#

    init(upstream: Int, dropPosts: Int) async throws {
        let portFile = FileManager.default.temporaryDirectory.appendingPathComponent("basalt-proxy-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: portFile) }
        process = try ChildProcess(["python3", "-c", Self.script, portFile, String(upstream), String(dropPosts)])
        var ports: [Int] = []
        for _ in 0..<100 where ports.count != 2 {
            ports = ((try? String(contentsOfFile: portFile, encoding: .utf8)) ?? "").split(separator: " ").compactMap { Int($0) }
            if ports.count != 2 { try await Task.sleep(for: .milliseconds(50)) }
        }
        guard ports.count == 2 else {
            process.signal(SIGKILL)
            throw TestSetupError("the proxy did not start")
        }
        (port, controlPort) = (ports[0], ports[1])
    }

    /// Cuts every connection now; returns how many POST answers are still to be dropped.
    func cutAll() async throws -> Int {
        // The control port answers bare bytes and closes: read them from the raw socket.
        try await Task.detached {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            defer { close(fd) }
            var addr = sockaddr_in()
            addr.sin_family = sa_family_t(AF_INET)
            addr.sin_port = in_port_t(UInt16(self.controlPort).bigEndian)
            addr.sin_addr.s_addr = inet_addr("127.0.0.1")
            let ok = withUnsafePointer(to: &addr) { p in
                p.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            guard ok == 0 else { throw TestSetupError("proxy control: connect failed") }
            var buffer = [UInt8](repeating: 0, count: 32)
            let n = read(fd, &buffer, buffer.count)
            return Int(String(decoding: buffer.prefix(max(n, 0)), as: UTF8.self)) ?? -1
        }.value
    }

    /// SIGKILL: a child of the test process may inherit a mask that blocks SIGTERM.
    func stop() { process.signal(SIGKILL) }
}

enum LiveServer {
    static func url(_ api: APIClient, port: Int? = nil) -> URL { URL(string: "http://127.0.0.1:\(port ?? api.port!)")! }
}

/// A client of the live test server behind `api`.
func makeClient(
    _ api: APIClient,
    port: Int? = nil,
    apiKey: String? = nil,
    transport: any BasaltTransport = AsyncHTTPClientTransport(),
    configure: (inout BasaltClient.Configuration) -> Void = { _ in }
) -> BasaltClient {
    var c = BasaltClient.Configuration()
    configure(&c)
    return BasaltClient(baseURL: LiveServer.url(api, port: port), apiKey: apiKey, transport: transport, configuration: c)
}
