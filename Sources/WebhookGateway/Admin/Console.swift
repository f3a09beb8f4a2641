import HTTPTypes
import Hummingbird
import NIOCore

/// The operator console (`GET /ui/`): three static files compiled into the binary
/// (`Sources/WebhookGateway/Console`, embedded by SwiftPM) and served without a token. The page
/// asks for the admin token and sends it on every API call it makes.
///
/// The page is served `no-cache` with an ETag, so a browser asks again each time and gets a 304
/// while the build is the same. Its script and style sheet live under a path that carries the
/// build's key (a hash of the three files), `/ui/<key>/console.js`, and are cached for a year: a new
/// build's page names new paths. Every answer carries the console's security headers: a
/// Content-Security-Policy that allows only this origin's script and style (no inline script, no
/// `eval`, no frames), `X-Frame-Options: DENY`, `Referrer-Policy: no-referrer` and `nosniff`.
struct Console: Sendable {
    struct File: Sendable {
        var path: String
        var contentType: String
        var bytes: ByteBuffer
        var cacheControl: String
    }

    /// The build's key: FNV-1a (64 bits) over the three files, in hex. A cache key, not a secret.
    let key: String
    /// The files by request path.
    let files: [String: File]

    static let contentSecurityPolicy =
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
        + "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

    init(
        page: [UInt8] = PackageResources.index_html, script: [UInt8] = PackageResources.console_js,
        style: [UInt8] = PackageResources.console_css
    ) {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for bytes in [page, script, style] {
            for byte in bytes {
                hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3
            }
            hash = (hash ^ 0xff) &* 0x100_0000_01b3
        }
        let key = String(hash, radix: 16)
        self.key = key
        // The page names its assets by the key: `{{build}}` in index.html.
        let pageText = String(decoding: page, as: UTF8.self).replacing("{{build}}", with: key)
        let immutable = "public, max-age=31536000, immutable"
        let list = [
            File(path: "/ui/", contentType: "text/html; charset=utf-8", bytes: ByteBuffer(string: pageText), cacheControl: "no-cache"),
            File(
                path: "/ui/\(key)/console.js", contentType: "text/javascript; charset=utf-8", bytes: ByteBuffer(bytes: script),
                cacheControl: immutable),
            File(
                path: "/ui/\(key)/console.css", contentType: "text/css; charset=utf-8", bytes: ByteBuffer(bytes: style),
                cacheControl: immutable),
        ]
        self.files = Dictionary(uniqueKeysWithValues: list.map { ($0.path, $0) })
    }

    /// The paths that need no token: exactly the console's files, and `/ui` (Hummingbird's router
    /// takes it for `/ui/`).
    var openPaths: Set<String> { Set(files.keys).union(["/ui"]) }

    func addRoutes(to router: Router<BasicRequestContext>) {
        for file in files.values {
            router.get(RouterPath(file.path)) { request, _ in serve(file, request: request) }
        }
    }

    private var etag: String { "\"\(key)\"" }

    func serve(_ file: File, request: Request) -> Response {
        var headers: HTTPFields = [
            .contentType: file.contentType,
            .cacheControl: file.cacheControl,
            .eTag: etag,
        ]
        Self.addSecurityHeaders(to: &headers)
        if let match = request.headers[.ifNoneMatch], match.split(separator: ",").contains(where: { $0.drop(while: { $0 == " " }) == etag })
        {
            return Response(status: .notModified, headers: headers)
        }
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: file.bytes))
    }

    static func addSecurityHeaders(to headers: inout HTTPFields) {
        headers[.contentSecurityPolicy] = contentSecurityPolicy
        headers[.frameOptions] = "DENY"
        headers[.referrerPolicy] = "no-referrer"
        headers[.xContentTypeOptions] = "nosniff"
    }
}

extension HTTPField.Name {
    static let frameOptions = Self("X-Frame-Options")!
    static let referrerPolicy = Self("Referrer-Policy")!
}
