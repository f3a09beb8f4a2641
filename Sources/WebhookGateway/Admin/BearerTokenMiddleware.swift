import HTTPTypes
import Hummingbird
import Verification

/// Requires `Authorization: Bearer <admin token>` on every admin route except the open probes.
///
/// The token is compared in constant time; a wrong or missing token gets 401 with a fixed body.
struct BearerTokenMiddleware<Context: RequestContext>: RouterMiddleware {
    /// The token; replaced by a configuration reload.
    let token: Reloadable<Secret>
    let openPaths: Set<String>

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        if openPaths.contains(request.uri.path) {
            return try await next(request, context)
        }
        guard let header = request.headers[.authorization], header.hasPrefix("Bearer "),
            token.value.constantTimeEquals(header.utf8.dropFirst(7))
        else {
            var response = Response.json(.unauthorized, ["error": "a valid admin bearer token is required"])
            response.headers[.wwwAuthenticate] = "Bearer"
            return response
        }
        return try await next(request, context)
    }
}
