import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import Verification

/// The built `webhook-gateway` binary, run as a child process on ports it picks itself.
final class GatewayProcess: @unchecked Sendable {
    static var binary: URL {
        let testBinary = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        var directory = testBinary.deletingLastPathComponent()
        // Swift Testing may run from inside `<product>.xctest`; walk up to the build folder.
        while directory.path != "/" {
            let candidate = directory.appendingPathComponent("webhook-gateway")
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
            directory = directory.deletingLastPathComponent()
        }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        return root.appendingPathComponent(".build/debug/webhook-gateway")
    }

    let process = Process()
    let ingressPort: Int
    let adminPort: Int

    /// Starts the binary with `config` and waits (up to 60 s) until both listeners are bound;
    /// `environment` is added to the test's own.
    init(config: String, directory: URL, name: String, environment extra: [String: String] = [:]) throws {
        let portsFile = directory.appendingPathComponent("\(name).ports")
        try? FileManager.default.removeItem(at: portsFile)
        process.executableURL = Self.binary
        process.arguments = ["serve", "--config", config]
        var environment = ProcessInfo.processInfo.environment
        environment["WEBHOOK_GATEWAY_PORTS_FILE"] = portsFile.path
        environment.merge(extra) { $1 }
        process.environment = environment
        let log = directory.appendingPathComponent("\(name).log")
        FileManager.default.createFile(atPath: log.path, contents: nil)
        let handle = try FileHandle(forWritingTo: log)
        process.standardOutput = handle
        process.standardError = handle
        try process.run()

        let deadline = Date().addingTimeInterval(60)
        var ports: [Int] = []
        while ports.count != 2 {
            guard Date() < deadline, process.isRunning else {
                throw CocoaError(.fileReadUnknown, userInfo: ["log": (try? String(contentsOf: log, encoding: .utf8)) ?? ""])
            }
            if let text = try? String(contentsOf: portsFile, encoding: .utf8) {
                ports = text.split(whereSeparator: \.isWhitespace).compactMap { Int($0) }
            }
            if ports.count != 2 { usleep(20_000) }
        }
        ingressPort = ports[0]
        adminPort = ports[1]
    }

    func kill(_ signal: Int32) {
        Foundation.kill(process.processIdentifier, signal)
    }

    /// Waits for the process to exit, up to `timeout`; returns its status, or nil if it is still running.
    /// (It polls with `Task.sleep`, so that no thread of the cooperative pool is blocked.)
    func waitForExit(timeout: TimeInterval) async -> Int32? {
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { try? await Task.sleep(for: .milliseconds(20)) }
        return process.isRunning ? nil : process.terminationStatus
    }

    deinit {
        if process.isRunning {
            kill(SIGKILL)
            process.waitUntilExit()
        }
    }

    /// Writes a configuration for one tiktok source and one consumer into `directory`.
    static func writeConfig(
        in directory: URL,
        secret: String,
        consumerURL: String = "http://127.0.0.1:9/",
        consumerSettings: String = ""
    ) throws -> String {
        let config = """
            {
              "listen": { "host": "127.0.0.1", "port": 0 },
              "admin": { "host": "127.0.0.1", "port": 0, "token": "crash-test-admin-token" },
              "storage": { "path": "gateway.sqlite" },
              "deadLetters": { "directory": "dead-letters" },
              "sources": [ { "name": "tiktok", "path": "/webhooks/tiktok", "scheme": "tiktok", "secrets": ["\(secret)"] } ],
              "consumers": [ { "name": "orders", "url": "\(consumerURL)", "signingSecret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"\(consumerSettings) } ]
            }
            """
        let path = directory.appendingPathComponent("config.json").path
        try config.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// POSTs a signed TikTok event for `orderID`, signed now; returns status and JSON body.
    static func send(
        orderID: String, secret: String, port: Int, timeout: TimeAmount = .seconds(5)
    ) async throws -> (status: Int, json: [String: String]) {
        let body =
            #"{"client_key":"k","event":"minis.trade_order.redeem.success","create_time":1,"user_openid":"","content":"{\"order_id\":\"\#(orderID)\"}"}"#
        return try await send(body: body, secret: secret, port: port, timeout: timeout)
    }

    /// POSTs `body` to the tiktok source, signed now with `secret`.
    static func send(
        body: String, secret: String, port: Int, timeout: TimeAmount = .seconds(5)
    ) async throws -> (status: Int, json: [String: String]) {
        let signature = TikTokSigner.tiktokSignature(
            secret: Secret(secret),
            timestamp: Int64(Date().timeIntervalSince1970),
            body: Array(body.utf8)
        )
        var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)/webhooks/tiktok")
        request.method = .POST
        request.headers.add(name: "TikTok-Signature", value: signature)
        request.body = .bytes(ByteBuffer(string: body))
        let response = try await HTTPClient.shared.execute(request, timeout: timeout)
        let bytes = try await response.body.collect(upTo: 1 << 16)
        let json = (try? JSONDecoder().decode([String: String].self, from: Data(bytes.readableBytesView))) ?? [:]
        return (Int(response.status.code), json)
    }
}

extension GatewayProcess {
    /// GETs an admin route; returns status and body text.
    func admin(_ path: String, token: String? = nil) async throws -> (status: Int, text: String) {
        var request = HTTPClientRequest(url: "http://127.0.0.1:\(adminPort)\(path)")
        if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(5))
        let bytes = try await response.body.collect(upTo: 1 << 20)
        return (Int(response.status.code), String(buffer: bytes))
    }
}

/// A value behind a lock, shareable between test tasks.
final class Locked<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Value

    init(_ value: Value) {
        self.value = value
    }

    func withLock<T>(_ body: (inout Value) throws -> T) rethrows -> T {
        try lock.withLock { try body(&value) }
    }
}
