import Foundation
import HTTPTypes
import NIOCore
import Testing

@testable import GatewayConfiguration
@testable import WebhookGateway

/// The budget of request bodies held in memory at once: its arithmetic, and the ingress answering
/// 503 past it and giving back every reservation however a request ends.
struct BodyBudgetTests {
    typealias FedBody = IngressBodyTests.FedBody
    let ingress = IngressBodyTests()

    @Test func reservesUpToTheLimitAndGivesBack() {
        let budget = BodyBudget(limit: 1_000)
        #expect(budget.reserve(600, bodyTotal: 600))
        #expect(!budget.reserve(401, bodyTotal: 401))
        #expect(budget.inUse == 600)
        #expect(budget.reserve(400, bodyTotal: 400))
        #expect(!budget.reserve(1, bodyTotal: 1))
        budget.release(600)
        budget.release(400)
        #expect(budget.inUse == 0)
    }

    @Test func largeBodiesLeaveAShareForSmallOnes() {
        let small = BodyBudget.smallBodyBytes
        let budget = BodyBudget(limit: 64 * small)
        // Large bodies fill 7/8 of it: 56 of 64.
        var large = 0
        while large < 100, budget.reserve(small + 1, bodyTotal: small + 1) { large += 1 }
        #expect(large == (56 * small) / (small + 1))
        // Small ones still fit, up to the whole budget.
        var smallCount = 0
        while smallCount < 100, budget.reserve(small, bodyTotal: small) { smallCount += 1 }
        #expect(smallCount == 8)
        #expect(budget.inUse <= budget.limit)
        // A chunked body is large once its total is: its next chunk no longer gets the small share.
        budget.release(budget.inUse)
        #expect(budget.reserve(56 * small - 10, bodyTotal: 56 * small - 10))
        #expect(budget.reserve(1_000, bodyTotal: 1_000))
        #expect(!budget.reserve(1_000, bodyTotal: small + 1_000))
    }

    @Test func concurrentReservationsNeverPassTheLimitAndEndAtZero() async {
        let budget = BodyBudget(limit: 10_000)
        await withTaskGroup(of: Void.self) { group in
            for task in 0..<8 {
                group.addTask {
                    for round in 0..<2_000 {
                        let bytes = 1 + (task * 7 + round) % 900
                        if budget.reserve(bytes, bodyTotal: bytes) {
                            #expect(budget.inUse <= 10_000)
                            budget.release(bytes)
                        }
                    }
                }
            }
        }
        #expect(budget.inUse == 0)
    }

    @Test func overBudgetRequestsGet503AndTheBudgetReturnsToZero() async throws {
        let event = GatewayFixture.tiktokEvent(orderID: "budget")
        let size = event.body.utf8.count
        // Room for one event's body, not two.
        let budget = BodyBudget(limit: size + 100)
        let fixture = try GatewayFixture(bodyBudget: budget)
        let responder = fixture.makeResponder()
        let signature = IngressBodyTests.signatureName
        let held = FedBody()
        let status = try await withThrowingTaskGroup(of: HTTPResponse.Status.self) { group in
            group.addTask {
                try await ingress.respond(responder, headers: [signature: event.signature, .contentLength: "\(size)"], body: held).status
            }
            // Its declared length is reserved before its body arrives.
            #expect(await Edge.eventually { budget.inUse == size })

            // Another declared body does not fit: refused before it is read.
            let refused = FedBody()
            refused.continuation.finish(throwing: IngressBodyTests.BodyReadError())
            let other = GatewayFixture.tiktokEvent(orderID: "other")
            let declared = try await ingress.respond(
                responder, headers: [signature: other.signature, .contentLength: "\(size)"], body: refused)
            #expect(declared.status == .serviceUnavailable)
            #expect(declared.json == ["error": "too many request bodies in memory; retry later"])
            #expect(!refused.wasRead)
            #expect(declared.headers[.connection] == nil)

            // A chunked one is refused at the chunk that does not fit, and its connection closed.
            let chunked = FedBody()
            chunked.continuation.yield(ByteBuffer(string: String(repeating: "x", count: 150)))
            chunked.continuation.finish()
            let streamed = try await ingress.respond(responder, headers: [signature: other.signature], body: chunked)
            #expect(streamed.status == .serviceUnavailable)
            #expect(streamed.headers[.connection] == "close")
            #expect(budget.inUse == size)

            held.continuation.yield(ByteBuffer(string: event.body))
            held.continuation.finish()
            return try await group.next()
        }
        #expect(status == .ok)
        #expect(budget.inUse == 0)
        #expect(fixture.requestCount(source: "tiktok", outcome: "unavailable") == 2)
        #expect(fixture.requestCount(source: "tiktok", outcome: "accepted") == 1)
        // Once given back, the next body fits.
        let again = FedBody()
        again.continuation.yield(ByteBuffer(string: event.body))
        again.continuation.finish()
        let duplicate = try await ingress.respond(
            responder, headers: [signature: event.signature, .contentLength: "\(size)"], body: again)
        #expect(duplicate.status == .ok)
        #expect(budget.inUse == 0)
    }

    @Test func theBudgetIsGivenBackWhenABodyFailsIsTooLargeOrIsCancelled() async throws {
        let budget = BodyBudget(limit: 1 << 20)
        let fixture = try GatewayFixture(bodyBudget: budget)
        let responder = fixture.makeResponder()
        let headers: HTTPFields = [IngressBodyTests.signatureName: IngressTests.tiktokSignature]

        // The connection breaks mid-body.
        let failing = FedBody()
        failing.continuation.yield(ByteBuffer(string: String(repeating: "x", count: 1_000)))
        failing.continuation.finish(throwing: IngressBodyTests.BodyReadError())
        await #expect(throws: IngressBodyTests.BodyReadError.self) {
            _ = try await ingress.respond(responder, headers: headers, body: failing)
        }
        #expect(budget.inUse == 0)

        // A chunked body passes maxBodyBytes (4 KiB here).
        let large = FedBody()
        for _ in 0..<5 { large.continuation.yield(ByteBuffer(string: String(repeating: "x", count: 1_000))) }
        large.continuation.finish()
        #expect(try await ingress.respond(responder, headers: headers, body: large).status == .contentTooLarge)
        #expect(budget.inUse == 0)

        // The request is cancelled while it waits for its body.
        let stalled = FedBody()
        var declared = headers
        declared[.contentLength] = "3000"
        let task = Task { try await ingress.respond(responder, headers: declared, body: stalled) }
        #expect(await Edge.eventually { budget.inUse == 3_000 })
        task.cancel()
        _ = try? await task.value
        #expect(budget.inUse == 0)
    }
}
