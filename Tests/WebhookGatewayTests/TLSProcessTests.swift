import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import NIOSSL
import Testing
import Verification

extension BinaryTests {
    /// HTTPS at the edge with the built binary and a certificate made in the test: HTTP/2 by ALPN,
    /// HTTP/1.1 as fallback, TLS on the admin listener, and SIGHUP replacing the certificate while a
    /// connection made before it stays usable.
    @Suite(.serialized, .timeLimit(.minutes(3)))
    struct TLSProcessTests {
        func startTLSGateway(in directory: URL) async throws -> (GatewayProcess, chain: String, key: String) {
            let (chain, key) = try await Edge.makeCertificate(in: directory, name: "first")
            let tls = #""tls": { "certificateChain": "\#(chain)", "privateKey": "\#(key)" }"#
            let config = try Edge.writeConfig(in: directory, listen: #""host": "127.0.0.1", "port": 0, \#(tls)"#, admin: ", \(tls)")
            return (try GatewayProcess(config: config, directory: directory, name: "tls"), chain, key)
        }

        func signedCurl(_ gateway: GatewayProcess, orderID: String, version: String) async throws -> Edge.Output {
            let body = Edge.tiktokBody(orderID: orderID)
            let signature = TikTokSigner.tiktokSignature(
                secret: Secret(Edge.secret), timestamp: Int64(Date().timeIntervalSince1970), body: Array(body.utf8))
            return try await Edge.run(
                "curl",
                [
                    "-sk", version, "-w", "\n%{http_version} %{http_code}", "-H", "TikTok-Signature: \(signature)", "--data-binary", body,
                    "https://127.0.0.1:\(gateway.ingressPort)/webhooks/tiktok",
                ])
        }

        @Test func servesHTTP2ByALPNAndHTTP11AsFallback() async throws {
            let directory = try Edge.temporaryDirectory("tls")
            defer { try? FileManager.default.removeItem(at: directory) }
            let (gateway, chain, _) = try await startTLSGateway(in: directory)

            let http2 = try await signedCurl(gateway, orderID: "tls-1", version: "--http2")
            #expect(http2.stdout.hasSuffix("\n2 200"), "\(http2.stdout) \(http2.stderr)")
            #expect(http2.stdout.contains(#""status":"accepted""#))
            let http11 = try await signedCurl(gateway, orderID: "tls-1", version: "--http1.1")
            #expect(http11.stdout.hasSuffix("\n1.1 200"), "\(http11.stdout)")
            #expect(http11.stdout.contains(#""status":"duplicate""#))

            // AsyncHTTPClient trusting only the test's certificate, with full verification (IP SAN).
            var tls = TLSConfiguration.makeClientConfiguration()
            tls.trustRoots = .file(chain)
            for version in [HTTPClient.Configuration.HTTPVersion.automatic, .http1Only] {
                var configuration = HTTPClient.Configuration(tlsConfiguration: tls)
                configuration.httpVersion = version
                let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
                var request = HTTPClientRequest(url: "https://127.0.0.1:\(gateway.ingressPort)/healthz")
                request.method = .GET
                let response = try await client.execute(request, timeout: .seconds(10))
                #expect(response.status == .ok)
                #expect(response.version == (version == .http1Only ? .http1_1 : .http2))
                let reply = try await Edge.send(
                    orderID: "ahc-\(version == .http1Only ? 1 : 2)", url: "https://127.0.0.1:\(gateway.ingressPort)/webhooks/tiktok",
                    client: client)
                #expect(reply.status == 200)
                try await client.shutdown()
            }

            // The admin listener speaks TLS too, with its bearer token.
            let metrics = try await Edge.run(
                "curl",
                ["-sk", "--http2", "-H", "Authorization: Bearer \(Edge.adminToken)", "https://127.0.0.1:\(gateway.adminPort)/metrics"])
            #expect(metrics.stdout.contains(#"webhook_gateway_requests_total{source="tiktok",outcome="accepted"} 3"#), "\(metrics.stdout)")
            let unauthorized = try await Edge.run(
                "curl", ["-sk", "-o", "/dev/null", "-w", "%{http_code}", "https://127.0.0.1:\(gateway.adminPort)/metrics"])
            #expect(unauthorized.stdout == "401")

            // The admin commands reach an HTTPS admin listener, trusting the given certificate.
            let config = directory.appendingPathComponent("config.json").path
            let adminURL = "https://127.0.0.1:\(gateway.adminPort)"
            let listed = try await Edge.run(
                GatewayProcess.binary.path, ["dead-letters", "list", "--config", config, "--admin-url", adminURL, "--ca-file", chain])
            #expect(listed.status == 0, "\(listed.stdout) \(listed.stderr)")
            let untrusted = try await Edge.run(
                GatewayProcess.binary.path, ["dead-letters", "list", "--config", config, "--admin-url", adminURL])
            #expect(untrusted.status != 0)

            // Plain HTTP on a TLS port gets no answer.
            let plain = try await Edge.run(
                "curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", "http://127.0.0.1:\(gateway.ingressPort)/healthz"])
            #expect(plain.stdout == "000")

            // An oversized body on an HTTP/2 stream is refused with 413 (the stream is reset, not read).
            let big = directory.appendingPathComponent("big.json")
            try Data(count: 2_000_000).write(to: big)
            let tooLarge = try await Edge.run(
                "curl",
                [
                    "-sk", "--http2", "-o", "/dev/null", "-w", "%{http_version} %{http_code}", "-H",
                    "TikTok-Signature: t=1,s=\(String(repeating: "0", count: 64))",
                    "--data-binary", "@\(big.path)", "https://127.0.0.1:\(gateway.ingressPort)/webhooks/tiktok",
                ])
            #expect(tooLarge.stdout == "2 413", "\(tooLarge.stdout) \(tooLarge.stderr)")
        }

        @Test func http2StreamsHaveTheirOwnReadDeadline() async throws {
            let directory = try Edge.temporaryDirectory("tls-h2-limits")
            defer { try? FileManager.default.removeItem(at: directory) }
            let (chain, key) = try await Edge.makeCertificate(in: directory, name: "first")
            let tls = #""tls": { "certificateChain": "\#(chain)", "privateKey": "\#(key)" }"#
            let config = try Edge.writeConfig(
                in: directory, listen: #""host": "127.0.0.1", "port": 0, \#(tls)"#,
                extra: #""limits": { "readTimeout": "1s", "idleTimeout": "60s" },"#)
            let gateway = try GatewayProcess(config: config, directory: directory, name: "h2")
            let base = "https://127.0.0.1:\(gateway.ingressPort)"

            // A body trickled at one byte a second on an HTTP/2 stream: the stream is reset after
            // the read timeout (curl: exit 92, the stream was not closed cleanly).
            let body = directory.appendingPathComponent("trickle.json")
            try Data(repeating: UInt8(ascii: "a"), count: 60).write(to: body)
            let started = ContinuousClock.now
            let trickled = try await Edge.run(
                "curl",
                [
                    "-sk", "--http2", "--limit-rate", "1", "-H", "TikTok-Signature: t=1,s=\(String(repeating: "0", count: 64))",
                    "--data-binary", "@\(body.path)",
                    "\(base)/webhooks/tiktok",
                ])
            let elapsed = ContinuousClock.now - started
            #expect(trickled.status != 0)
            #expect(elapsed < .seconds(10), "the trickled stream lasted \(elapsed)")

            // Between requests an HTTP/2 client sends control frames; they must not start a read
            // deadline: the connection stays open (idle) past readTimeout and is reused.
            let reused = try await Edge.run(
                "curl",
                [
                    "-sk", "--http2", "--rate", "20/m", "-w", "%{http_version} %{http_code} %{num_connects}\n", "-o", "/dev/null",
                    "\(base)/healthz", "-o", "/dev/null", "\(base)/healthz",
                ])
            #expect(reused.stdout == "2 200 1\n2 200 0\n", "\(reused.stdout) \(reused.stderr)")
        }

        @Test func sighupReplacesTheCertificateWithoutDroppingOpenConnections() async throws {
            let directory = try Edge.temporaryDirectory("tls-reload")
            defer { try? FileManager.default.removeItem(at: directory) }
            let (gateway, chain, key) = try await startTLSGateway(in: directory)
            #expect(try await Edge.presentedCommonName(port: gateway.ingressPort) == "first")

            // New files in place; the gateway keeps using the loaded pair until SIGHUP.
            let second = try await Edge.makeCertificate(in: directory, name: "second")
            try FileManager.default.removeItem(atPath: chain)
            try FileManager.default.removeItem(atPath: key)
            try FileManager.default.moveItem(atPath: second.chain, toPath: chain)
            try FileManager.default.moveItem(atPath: second.key, toPath: key)
            #expect(try await Edge.presentedCommonName(port: gateway.ingressPort) == "first")

            // A keep-alive connection made before the reload; the script signs with Python's hmac,
            // sends SIGHUP itself, waits until new connections see the new certificate, then uses the
            // old connection again.
            let script = """
                import hashlib, hmac, http.client, json, os, signal, socket, ssl, sys, time
                port, pid, secret = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3].encode()
                context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT); context.check_hostname = False; context.verify_mode = ssl.CERT_NONE
                def post(connection, order):
                    body = json.dumps({"event": "minis.trade_order.redeem.success", "content": json.dumps({"order_id": order})}).encode()
                    t = str(int(time.time()))
                    signature = hmac.new(secret, t.encode() + b"." + body, hashlib.sha256).hexdigest()
                    connection.request("POST", "/webhooks/tiktok", body, {"TikTok-Signature": "t=%s,s=%s" % (t, signature)})
                    response = connection.getresponse()
                    return response.status, json.loads(response.read())["status"]
                old = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=10)
                first = post(old, "before-reload")
                old_cert = old.sock.getpeercert(binary_form=True)
                os.kill(pid, signal.SIGHUP)
                deadline = time.monotonic() + 10
                changed = False
                while time.monotonic() < deadline and not changed:
                    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
                        with context.wrap_socket(raw) as tls:
                            changed = tls.getpeercert(binary_form=True) != old_cert
                old_socket = old.sock
                second = post(old, "after-reload")
                print(json.dumps({"first": first, "changed": changed, "second": second, "sameConnection": old.sock is old_socket,
                                  "sameCertificate": old.sock.getpeercert(binary_form=True) == old_cert}))
                """
            let result = try await Edge.run(
                "python3", ["-c", script, "\(gateway.ingressPort)", "\(gateway.process.processIdentifier)", Edge.secret])
            let json = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any], "\(result.stderr)")
            #expect(json["first"] as? [AnyHashable] == [200, "accepted"])
            #expect(json["changed"] as? Bool == true)
            #expect(json["second"] as? [AnyHashable] == [200, "accepted"])
            #expect(json["sameConnection"] as? Bool == true)
            #expect(json["sameCertificate"] as? Bool == true)
            #expect(try await Edge.presentedCommonName(port: gateway.ingressPort) == "second")
            // The admin listener reloaded its pair too.
            #expect(try await Edge.presentedCommonName(port: gateway.adminPort) == "second")

            // A broken key is refused; the running certificate stays. check-config says so first.
            try "not a key".write(toFile: key, atomically: true, encoding: .utf8)
            let checked = try await Edge.run(
                GatewayProcess.binary.path, ["check-config", "--config", directory.appendingPathComponent("config.json").path])
            #expect(checked.status == 2)
            #expect(checked.stderr.contains("listen.tls: cannot read the private key \(key) (PEM expected)"), "\(checked.stderr)")
            gateway.kill(SIGHUP)
            let log = directory.appendingPathComponent("tls.log")
            #expect(
                await Edge.eventually {
                    ((try? String(contentsOf: log, encoding: .utf8)) ?? "").contains("configuration reload refused")
                })
            #expect(try await Edge.presentedCommonName(port: gateway.ingressPort) == "second")
            let text = try String(contentsOf: log, encoding: .utf8)
            #expect(text.contains("cannot read the private key \(key)"))
            #expect(gateway.process.isRunning)
        }
    }
}
