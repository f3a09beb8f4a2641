import Foundation
import FuzzDriver
import Verification

// Fuzzes the envelope scanner: `Envelope.parse` under both schemes on the input as a verified
// body, and `JSONScanner` alone.
//
// Besides "no crash", each run checks what the parsers promise: an envelope's de-duplication key
// is the one its fields call for (and a body that is not an envelope is keyed by its hash); the
// scanner accepts only what Foundation's JSON parser accepts too, and then reads the same members.

let source = "fuzz"
let tiktokSecret = Secret("fuzz-tiktok-client-secret")
let shopAppKey = Secret("fuzz-shop-app-key")
let shopSecret = Secret("fuzz-shop-app-secret")
let tiktok = WebhookVerifier.tiktok(secrets: [tiktokSecret])
let shop = WebhookVerifier.tiktokShop(appKey: shopAppKey, secrets: [shopSecret])
let now = Date(timeIntervalSince1970: 1_700_000_000)

func fuzz(_ input: [UInt8]) {
    let body = Data(input)
    // `Envelope.parse` asks for proof of verification, which only a verifier gives: sign the body.
    let tiktokHeader = TikTokSigner.tiktokSignature(secret: tiktokSecret, timestamp: 1_700_000_000, body: body)
    let shopHeader = TikTokSigner.tiktokShopAuthorization(appKey: shopAppKey, secret: shopSecret, body: body)
    guard let tiktokProof = try? tiktok.verify(body: body, headers: [("TikTok-Signature", tiktokHeader)], now: now),
        let shopProof = try? shop.verify(body: body, headers: [("Authorization", shopHeader)], now: now)
    else { fatalError("a signed body was refused") }

    let foundation = try? JSONSerialization.jsonObject(with: body, options: [.fragmentsAllowed])
    checkTikTok(Envelope.parse(body: body, source: source, verified: tiktokProof), body: body, foundation: foundation)
    checkShop(Envelope.parse(body: body, source: source, verified: shopProof), body: body, foundation: foundation)
    checkScanner(input, foundation: foundation)
}

/// A TikTok event: `event` is a non-empty string; a trade-order event with an order id is keyed
/// by the order, anything else by the body's hash.
func checkTikTok(_ parsed: ParsedBody, body: Data, foundation: Any?) {
    guard case .envelope(let envelope) = parsed else {
        precondition(parsed.dedupKey == .bodyHash(source: source, body: body), "not an envelope, but not keyed by its hash")
        return
    }
    guard let object = foundation as? [String: Any] else { fatalError("an envelope that Foundation does not read") }
    precondition(object["event"] as? String == envelope.eventType, "the event differs from Foundation's")
    precondition(!envelope.eventType.isEmpty, "an empty event")
    precondition(envelope.notificationID == nil && envelope.shopID == nil, "Shop fields in a TikTok event")
    if let orderID = envelope.orderID, envelope.eventType.hasPrefix("minis.trade_order.") {
        precondition(!orderID.isEmpty, "an empty order id")
        precondition(
            envelope.dedupKey == .order(source: source, event: envelope.eventType, orderID: orderID), "a trade order keyed otherwise")
    } else {
        precondition(envelope.dedupKey == .bodyHash(source: source, body: body), "an event keyed otherwise than by its hash")
    }
}

/// A Shop notification: `type` is an integer; a notification id, when there is one, is the key.
func checkShop(_ parsed: ParsedBody, body: Data, foundation: Any?) {
    guard case .envelope(let envelope) = parsed else {
        precondition(parsed.dedupKey == .bodyHash(source: source, body: body), "not an envelope, but not keyed by its hash")
        return
    }
    guard foundation is [String: Any] else { fatalError("a notification that Foundation does not read") }
    precondition(Int64(envelope.eventType) != nil, "a type that is not an integer")
    precondition(envelope.isSandbox == nil && envelope.tradeOrderID == nil, "TikTok fields in a Shop notification")
    if let id = envelope.notificationID {
        precondition(!id.isEmpty, "an empty notification id")
        precondition(envelope.dedupKey == .notification(source: source, notificationID: id), "a notification keyed otherwise")
    } else {
        precondition(envelope.dedupKey == .bodyHash(source: source, body: body), "a notification keyed otherwise than by its hash")
    }
}

/// The scanner alone: a document it reads whole, Foundation reads as an object with the same keys,
/// and every string member has the same value.
func checkScanner(_ input: [UInt8], foundation: Any?) {
    var members: [(String, JSONScanner.Scalar)] = []
    do {
        var scanner = try JSONScanner(input)
        try scanner.readDocument { key, scanner throws(JSONScanner.Invalid) in
            members.append((key, try scanner.readScalar()))
        }
    } catch {
        return
    }
    guard let object = foundation as? [String: Any] else { fatalError("the scanner read a document that Foundation refuses") }
    // A key given twice: the scanner sees both, Foundation keeps one; compare only single keys.
    var counts: [String: Int] = [:]
    for (key, _) in members { counts[key, default: 0] += 1 }
    precondition(Set(counts.keys) == Set(object.keys), "the scanner and Foundation read different keys")
    for (key, scalar) in members where counts[key] == 1 {
        switch scalar {
        case .string(let text): precondition(object[key] as? String == text, "a string member differs from Foundation's")
        case .bool(let value): precondition((object[key] as? NSNumber)?.boolValue == value, "a boolean differs")
        case .null: precondition(object[key] is NSNull, "a null differs")
        default: break  // numbers are compared as Foundation reads them: not at all
        }
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    fuzz(Array(UnsafeBufferPointer(start: data, count: size)))
    return 0
}

@_cdecl("FuzzEnvelope_main")
func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var argc = argc
    var argv = argv
    return LLVMFuzzerRunDriver(&argc, &argv) { data, size in fuzzOne(data, size) }
}
