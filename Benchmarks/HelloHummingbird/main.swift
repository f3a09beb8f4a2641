import Hummingbird

// The bare Hummingbird baseline of Benchmarks/ingest: answers every POST / and GET / with a
// fixed body, without reading the request body. Usage: HelloHummingbird <port>
let port = CommandLine.arguments.count > 1 ? Int(CommandLine.arguments[1]) ?? 18081 : 18081
let router = Router()
router.post("/") { _, _ in "Hello" }
router.get("/") { _, _ in "Hello" }
let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: port)))
try await app.runService()
