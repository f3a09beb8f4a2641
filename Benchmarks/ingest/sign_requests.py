#!/usr/bin/env python3
"""Writes pre-signed, unique requests for wrk, one per line: header name, header value, body (tabs).

Signatures are computed here with Python's hmac, independently of the gateway's code.

  sign_requests.py tiktok COUNT SECRET     -> TikTok-Signature: t=<now>,s=<hmac(t.body)>
  sign_requests.py webhook COUNT SECRET    -> X-Signature: sha256=<hmac(body)> (adnanh/webhook)
"""
import hashlib
import hmac
import sys
import time

kind, count, secret = sys.argv[1], int(sys.argv[2]), sys.argv[3].encode()
now = str(int(time.time()))
out = sys.stdout
pad = "x" * 700  # about 1 KiB per event, like a real payment event with its details
for index in range(count):
    content = '{\\"trade_order_id\\":\\"TOID%d\\",\\"order_id\\":\\"bench-%s-%d\\",\\"is_sandbox\\":true,\\"note\\":\\"%s\\"}' % (index, now, index, pad)
    body = '{"client_key":"bench","event":"minis.trade_order.redeem.success","create_time":%s,"user_openid":"","content":"%s"}' % (now, content)
    if kind == "tiktok":
        signature = hmac.new(secret, (now + "." + body).encode(), hashlib.sha256).hexdigest()
        out.write("TikTok-Signature\tt=%s,s=%s\t%s\n" % (now, signature, body))
    else:
        signature = hmac.new(secret, body.encode(), hashlib.sha256).hexdigest()
        out.write("X-Signature\tsha256=%s\t%s\n" % (signature, body))
