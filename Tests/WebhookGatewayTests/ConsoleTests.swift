import Delivery
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Prometheus
import Testing
import Verification

@testable import WebhookGateway

/// The operator console's files at `/ui/`: open without the token (the API calls it makes are not),
/// served with the console's security and cache headers, and written so that event data cannot
/// become markup. The page itself is tested in a real browser (Tests/Browser, scripts/browser-test.sh).
struct ConsoleTests {
    static let token = "console-admin-token"

    func withClient(_ body: @escaping @Sendable (any TestClientProtocol, Console) async throws -> Void) async throws {
        let fixture = try GatewayFixture()
        let console = Console()
        let app = Application(
            router: AdminRouter.make(
                token: Reloadable(Secret(Self.token)), state: GatewayState(store: fixture.store),
                deadLetters: DeadLetterAdmin(
                    archive: FileDeadLetterArchive(writer: DeadLetterWriter(directory: fixture.directory.path)),
                    store: fixture.store, consumers: [], now: { Date() }, onReplayed: { _ in }),
                registry: PrometheusCollectorRegistry(), console: console, refreshGauges: {}))
        try await app.test(.router) { client in try await body(client, console) }
    }

    static func expectSecurityHeaders(_ response: TestResponse) {
        let policy = response.headers[.contentSecurityPolicy] ?? ""
        #expect(policy.contains("default-src 'none'"))
        #expect(policy.contains("script-src 'self'"))
        #expect(policy.contains("frame-ancestors 'none'"))
        #expect(!policy.contains("unsafe-inline") && !policy.contains("unsafe-eval"))
        #expect(response.headers[HTTPField.Name("X-Frame-Options")!] == "DENY")
        #expect(response.headers[HTTPField.Name("Referrer-Policy")!] == "no-referrer")
        #expect(response.headers[.xContentTypeOptions] == "nosniff")
    }

    @Test func thePageNeedsNoTokenAndNamesItsFilesByTheBuild() async throws {
        try await withClient { client, console in
            for uri in ["/ui/", "/ui"] {
                try await client.execute(uri: uri, method: .get) { response in
                    #expect(response.status == .ok)
                    #expect(response.headers[.contentType] == "text/html; charset=utf-8")
                    #expect(response.headers[.cacheControl] == "no-cache")
                    #expect(response.headers[.eTag] == "\"\(console.key)\"")
                    Self.expectSecurityHeaders(response)
                    let page = String(buffer: response.body)
                    #expect(page.contains("src=\"/ui/\(console.key)/console.js\""))
                    #expect(page.contains("href=\"/ui/\(console.key)/console.css\""))
                    #expect(!page.contains("{{build}}"))
                    // No inline script: every <script> has a src (the CSP would block one anyway).
                    #expect(page.components(separatedBy: "<script").count == 2)
                    #expect(!page.contains("<style") && !page.contains(" style="))
                    #expect(page.firstMatch(of: /\son[a-z]+\s*=/) == nil, "an inline event handler")
                }
            }
            for (file, type) in [("console.js", "text/javascript; charset=utf-8"), ("console.css", "text/css; charset=utf-8")] {
                try await client.execute(uri: "/ui/\(console.key)/\(file)", method: .get) { response in
                    #expect(response.status == .ok)
                    #expect(response.headers[.contentType] == type)
                    #expect(response.headers[.cacheControl] == "public, max-age=31536000, immutable")
                    Self.expectSecurityHeaders(response)
                    #expect(response.body.readableBytes > 1000)
                }
            }
        }
    }

    @Test func aBrowserWithTheBuildsPageGetsA304() async throws {
        try await withClient { client, console in
            try await client.execute(uri: "/ui/", method: .get, headers: [.ifNoneMatch: "\"\(console.key)\""]) { response in
                #expect(response.status == .notModified)
                #expect(response.body.readableBytes == 0)
                Self.expectSecurityHeaders(response)
            }
            try await client.execute(uri: "/ui/", method: .get, headers: [.ifNoneMatch: "\"an-older-build\""]) { response in
                #expect(response.status == .ok)
            }
        }
    }

    /// Only the console's own files are open: another build's path, a path that climbs out of
    /// `/ui/`, and every API route still need the token.
    @Test(arguments: [
        "/ui/0123456789abcdef/console.js", "/ui/../admin/consumers", "/ui/%2e%2e/admin/consumers", "/ui/index.html", "/admin/consumers",
        "/metrics",
    ])
    func nothingElseIsOpen(uri: String) async throws {
        try await withClient { client, _ in
            try await client.execute(uri: uri, method: .get) { response in
                #expect(response.status == .unauthorized, "\(uri)")
            }
        }
    }

    @Test func theKeyChangesWithAnyFile() {
        let page = Array("<html>{{build}}</html>".utf8)
        let base = Console(page: page, script: Array("a".utf8), style: Array("b".utf8))
        #expect(Console(page: page, script: Array("a".utf8), style: Array("b".utf8)).key == base.key)
        #expect(Console(page: page, script: Array("a ".utf8), style: Array("b".utf8)).key != base.key)
        #expect(Console(page: page, script: Array("a".utf8), style: Array("c".utf8)).key != base.key)
        // Moving a byte from one file to the next is a different build too.
        #expect(Console(page: page, script: Array("ab".utf8), style: Array("".utf8)).key != base.key)
    }

    /// The script sets what it shows from the API as text: none of the DOM's ways of turning a
    /// string into markup or code appears in it (the browser tests check the result with payloads).
    @Test func theScriptNeverTurnsDataIntoMarkup() {
        let script = String(decoding: PackageResources.console_js, as: UTF8.self)
        for sink in [
            "innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function", "setAttribute('on", "srcdoc",
            "javascript:",
        ] {
            #expect(!script.contains(sink), "console.js uses \(sink)")
        }
        // The token is kept for the tab only.
        #expect(script.contains("sessionStorage") && !script.contains("localStorage") && !script.contains("document.cookie"))
    }
}
