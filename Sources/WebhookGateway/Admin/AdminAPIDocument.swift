// Written by scripts/openapi.sh from docs/admin-api.yaml: edit that file and run the script.

/// The admin API's OpenAPI 3.1 document, served at `/admin/openapi.json`.
enum AdminAPIDocument {
    static let json = #"""
        {
         "components": {
          "responses": {
           "BadRequest": {
            "content": {
             "application/json": {
              "schema": {
               "$ref": "#/components/schemas/Error"
              }
             }
            },
            "description": "the request is malformed; `error` says what is wrong"
           },
           "NotFound": {
            "content": {
             "application/json": {
              "schema": {
               "$ref": "#/components/schemas/Error"
              }
             }
            },
            "description": "unknown (or, for an event, pruned after events.retention)"
           },
           "StoreUnavailable": {
            "content": {
             "application/json": {
              "schema": {
               "$ref": "#/components/schemas/Error"
              }
             }
            },
            "description": "the store does not answer now (retry later)"
           },
           "TooLarge": {
            "description": "the request body is too large"
           },
           "Unauthorized": {
            "content": {
             "application/json": {
              "schema": {
               "$ref": "#/components/schemas/Error"
              }
             }
            },
            "description": "no admin bearer token, or a wrong one"
           }
          },
          "schemas": {
           "Attempt": {
            "properties": {
             "at": {
              "$ref": "#/components/schemas/Time"
             },
             "durationMs": {
              "minimum": 0,
              "type": [
               "integer",
               "null"
              ]
             },
             "error": {
              "description": "set when status is null",
              "type": [
               "string",
               "null"
              ]
             },
             "status": {
              "description": "the consumer's HTTP status; null when there was no answer",
              "type": [
               "integer",
               "null"
              ]
             }
            },
            "required": [
             "at",
             "status",
             "error",
             "durationMs"
            ],
            "type": "object"
           },
           "Consumer": {
            "properties": {
             "lastDeliveredAt": {
              "$ref": "#/components/schemas/NullableTime"
             },
             "lastFailure": {
              "type": [
               "string",
               "null"
              ]
             },
             "lastFailureAt": {
              "$ref": "#/components/schemas/NullableTime"
             },
             "name": {
              "type": "string"
             },
             "oldestPendingAt": {
              "$ref": "#/components/schemas/NullableTime"
             },
             "paused": {
              "type": "boolean"
             },
             "pausedBy": {
              "enum": [
               "failures",
               "operator",
               null
              ],
              "type": [
               "string",
               "null"
              ]
             },
             "queueDepth": {
              "minimum": 0,
              "type": "integer"
             },
             "url": {
              "description": "without user, password, query or fragment",
              "type": "string"
             }
            },
            "required": [
             "name",
             "url",
             "paused",
             "pausedBy",
             "queueDepth",
             "oldestPendingAt",
             "lastDeliveredAt",
             "lastFailureAt",
             "lastFailure"
            ],
            "type": "object"
           },
           "DeliveryDetail": {
            "properties": {
             "attempts": {
              "items": {
               "$ref": "#/components/schemas/Attempt"
              },
              "type": "array"
             },
             "consumer": {
              "type": "string"
             },
             "deadLetterId": {
              "type": [
               "string",
               "null"
              ]
             },
             "finishedAt": {
              "$ref": "#/components/schemas/NullableTime"
             },
             "lastAttemptAt": {
              "$ref": "#/components/schemas/NullableTime"
             },
             "lastError": {
              "type": [
               "string",
               "null"
              ]
             },
             "lastStatus": {
              "type": [
               "integer",
               "null"
              ]
             },
             "nextAttemptAt": {
              "$ref": "#/components/schemas/NullableTime"
             },
             "queuedAt": {
              "$ref": "#/components/schemas/Time"
             },
             "reason": {
              "description": "why it was dead-lettered",
              "type": [
               "string",
               "null"
              ]
             },
             "replayOf": {
              "description": "the dead letter a replay queued it from, or `redeliver` for an operator's redelivery",
              "type": [
               "string",
               "null"
              ]
             },
             "status": {
              "$ref": "#/components/schemas/DeliveryStatus"
             }
            },
            "required": [
             "consumer",
             "status",
             "attempts",
             "lastAttemptAt",
             "lastStatus",
             "lastError",
             "nextAttemptAt",
             "queuedAt",
             "finishedAt",
             "deadLetterId",
             "reason",
             "replayOf"
            ],
            "type": "object"
           },
           "DeliveryStatus": {
            "enum": [
             "pending",
             "delivering",
             "delivered",
             "dead_lettered"
            ],
            "type": "string"
           },
           "DeliverySummary": {
            "properties": {
             "attempts": {
              "minimum": 0,
              "type": "integer"
             },
             "consumer": {
              "type": "string"
             },
             "lastAttemptAt": {
              "$ref": "#/components/schemas/NullableTime"
             },
             "lastError": {
              "type": [
               "string",
               "null"
              ]
             },
             "lastStatus": {
              "type": [
               "integer",
               "null"
              ]
             },
             "nextAttemptAt": {
              "$ref": "#/components/schemas/NullableTime"
             },
             "status": {
              "$ref": "#/components/schemas/DeliveryStatus"
             }
            },
            "required": [
             "consumer",
             "status",
             "attempts",
             "lastAttemptAt",
             "lastStatus",
             "lastError",
             "nextAttemptAt"
            ],
            "type": "object"
           },
           "Error": {
            "properties": {
             "error": {
              "type": "string"
             }
            },
            "required": [
             "error"
            ],
            "type": "object"
           },
           "EventDetail": {
            "properties": {
             "body": {
              "description": "the exact body, when it is UTF-8",
              "type": "string"
             },
             "bodyBase64": {
              "description": "the body in base64, when it is not UTF-8",
              "type": "string"
             },
             "dedupKey": {
              "type": "string"
             },
             "deliveries": {
              "items": {
               "$ref": "#/components/schemas/DeliveryDetail"
              },
              "type": "array"
             },
             "eventType": {
              "type": [
               "string",
               "null"
              ]
             },
             "headers": {
              "additionalProperties": {
               "type": "string"
              },
              "type": "object"
             },
             "id": {
              "type": "string"
             },
             "orderId": {
              "type": [
               "string",
               "null"
              ]
             },
             "receivedAt": {
              "$ref": "#/components/schemas/Time"
             },
             "sandbox": {
              "type": "boolean"
             },
             "source": {
              "type": "string"
             }
            },
            "required": [
             "id",
             "source",
             "eventType",
             "orderId",
             "dedupKey",
             "receivedAt",
             "sandbox",
             "deliveries",
             "headers"
            ],
            "type": "object"
           },
           "EventSummary": {
            "properties": {
             "dedupKey": {
              "type": "string"
             },
             "deliveries": {
              "items": {
               "$ref": "#/components/schemas/DeliverySummary"
              },
              "type": "array"
             },
             "eventType": {
              "type": [
               "string",
               "null"
              ]
             },
             "id": {
              "type": "string"
             },
             "orderId": {
              "type": [
               "string",
               "null"
              ]
             },
             "receivedAt": {
              "$ref": "#/components/schemas/Time"
             },
             "sandbox": {
              "type": "boolean"
             },
             "source": {
              "type": "string"
             }
            },
            "required": [
             "id",
             "source",
             "eventType",
             "orderId",
             "dedupKey",
             "receivedAt",
             "sandbox",
             "deliveries"
            ],
            "type": "object"
           },
           "ListedDeadLetter": {
            "properties": {
             "attempts": {
              "items": {
               "properties": {
                "at": {
                 "$ref": "#/components/schemas/Time"
                },
                "error": {
                 "type": [
                  "string",
                  "null"
                 ]
                },
                "status": {
                 "type": [
                  "integer",
                  "null"
                 ]
                }
               },
               "required": [
                "at",
                "status",
                "error"
               ],
               "type": "object"
              },
              "type": "array"
             },
             "body": {
              "type": "string"
             },
             "bodyBase64": {
              "type": "string"
             },
             "consumer": {
              "type": "string"
             },
             "deadLetteredAt": {
              "$ref": "#/components/schemas/Time"
             },
             "dedupKey": {
              "type": "string"
             },
             "eventId": {
              "type": "string"
             },
             "eventType": {
              "type": [
               "string",
               "null"
              ]
             },
             "headers": {
              "additionalProperties": {
               "type": "string"
              },
              "type": "object"
             },
             "id": {
              "type": "string"
             },
             "reason": {
              "type": "string"
             },
             "receivedAt": {
              "$ref": "#/components/schemas/Time"
             },
             "replayed": {
              "type": "boolean"
             },
             "replayedAt": {
              "$ref": "#/components/schemas/NullableTime"
             },
             "source": {
              "type": "string"
             }
            },
            "required": [
             "id",
             "eventId",
             "consumer",
             "source",
             "eventType",
             "dedupKey",
             "receivedAt",
             "deadLetteredAt",
             "reason",
             "attempts",
             "headers",
             "replayed",
             "replayedAt"
            ],
            "type": "object"
           },
           "NullableTime": {
            "format": "date-time",
            "type": [
             "string",
             "null"
            ]
           },
           "Status": {
            "properties": {
             "status": {
              "type": "string"
             }
            },
            "required": [
             "status"
            ],
            "type": "object"
           },
           "Time": {
            "format": "date-time",
            "type": "string"
           }
          },
          "securitySchemes": {
           "adminToken": {
            "scheme": "bearer",
            "type": "http"
           }
          }
         },
         "info": {
          "description": "The admin listener of webhook-gateway (`admin.host:admin.port`): health, metrics, the event log, dead letters, consumers. Every route but /healthz and /readyz needs `Authorization: Bearer <admin token>`. Times are RFC 3339 in UTC with milliseconds. The gateway serves this document at /admin/openapi.json; `scripts/openapi.sh` writes the copy the binary carries, and a test keeps the two and the router's routes the same.",
          "title": "webhook-gateway admin API",
          "version": "1.0.0"
         },
         "openapi": "3.1.0",
         "paths": {
          "/admin/consumers": {
           "get": {
            "operationId": "listConsumers",
            "responses": {
             "200": {
              "content": {
               "application/json": {
                "schema": {
                 "properties": {
                  "consumers": {
                   "items": {
                    "$ref": "#/components/schemas/Consumer"
                   },
                   "type": "array"
                  }
                 },
                 "required": [
                  "consumers"
                 ],
                 "type": "object"
                }
               }
              },
              "description": "the consumers"
             },
             "401": {
              "$ref": "#/components/responses/Unauthorized"
             },
             "503": {
              "$ref": "#/components/responses/StoreUnavailable"
             }
            },
            "summary": "every consumer with its state"
           }
          },
          "/admin/consumers/{name}/pause": {
           "post": {
            "operationId": "pauseConsumer",
            "parameters": [
             {
              "in": "path",
              "name": "name",
              "required": true,
              "schema": {
               "type": "string"
              }
             }
            ],
            "responses": {
             "200": {
              "content": {
               "application/json": {
                "schema": {
                 "$ref": "#/components/schemas/Consumer"
                }
               }
              },
              "description": "the consumer afterwards"
             },
             "401": {
              "$ref": "#/components/responses/Unauthorized"
             },
             "404": {
              "$ref": "#/components/responses/NotFound"
             },
             "503": {
              "$ref": "#/components/responses/StoreUnavailable"
             }
            },
            "summary": "an operator's pause (nothing is sent until resumed; survives restarts)"
           }
          },
          "/admin/consumers/{name}/resume": {
           "post": {
            "operationId": "resumeConsumer",
            "parameters": [
             {
              "in": "path",
              "name": "name",
              "required": true,
              "schema": {
               "type": "string"
              }
             }
            ],
            "responses": {
             "200": {
              "content": {
               "application/json": {
                "schema": {
                 "$ref": "#/components/schemas/Consumer"
                }
               }
              },
              "description": "the consumer afterwards"
             },
             "401": {
              "$ref": "#/components/responses/Unauthorized"
             },
             "404": {
              "$ref": "#/components/responses/NotFound"
             },
             "503": {
              "$ref": "#/components/responses/StoreUnavailable"
             }
            },
            "summary": "ends an operator's pause, and a pause by failures (the operator says the consumer is back)"
           }
          },
          "/admin/dead-letters": {
           "get": {
            "operationId": "listDeadLetters",
            "parameters": [
             {
              "in": "query",
              "name": "consumer",
              "schema": {
               "type": "string"
              }
             },
             {
              "description": "a dead-letter id; repeat for several",
              "in": "query",
              "name": "id",
              "schema": {
               "items": {
                "type": "string"
               },
               "type": "array"
              }
             },
             {
              "in": "query",
              "name": "eventType",
              "schema": {
               "type": "string"
              }
             },
             {
              "in": "query",
              "name": "dedupKey",
              "schema": {
               "type": "string"
              }
             },
             {
              "in": "query",
              "name": "since",
              "schema": {
               "format": "date-time",
               "type": "string"
              }
             },
             {
              "in": "query",
              "name": "until",
              "schema": {
               "format": "date-time",
               "type": "string"
              }
             },
             {
              "in": "query",
              "name": "limit",
              "schema": {
               "default": 100,
               "maximum": 1000,
               "minimum": 1,
               "type": "integer"
              }
             },
             {
              "in": "query",
              "name": "cursor",
              "schema": {
               "type": "string"
              }
             }
            ],
            "responses": {
             "200": {
              "content": {
               "application/json": {
                "schema": {
                 "properties": {
                  "deadLetters": {
                   "items": {
                    "$ref": "#/components/schemas/ListedDeadLetter"
                   },
                   "type": "array"
                  },
                  "nextCursor": {
                   "type": [
                    "string",
                    "null"
                   ]
                  }
                 },
                 "required": [
                  "deadLetters",
                  "nextCursor"
                 ],
                 "type": "object"
                }
               }
              },
              "description": "a page of dead letters"
             },
             "400": {
              "$ref": "#/components/responses/BadRequest"
             },
             "401": {
              "$ref": "#/components/responses/Unauthorized"
             },
             "404": {
              "$ref": "#/components/responses/NotFound"
             },
             "503": {
              "$ref": "#/components/responses/StoreUnavailable"
             }
            },
            "summary": "dead letters, newest first"
           }
          },
          "/admin/dead-letters/replay": {
           "post": {
            "operationId": "replayDeadLetters",
            "requestBody": {
             "content": {
              "application/json": {
               "schema": {
                "additionalProperties": false,
                "properties": {
                 "consumer": {
                  "minLength": 1,
                  "type": "string"
                 },
                 "dedupKey": {
                  "type": "string"
                 },
                 "dryRun": {
                  "type": "boolean"
                 },
                 "eventType": {
                  "type": "string"
                 },
                 "force": {
                  "type": "boolean"
                 },
                 "ids": {
                  "items": {
                   "type": "string"
                  },
                  "type": "array"
                 },
                 "since": {
                  "format": "date-time",
                  "type": "string"
                 },
                 "until": {
                  "format": "date-time",
                  "type": "string"
                 }
                },
                "required": [
                 "consumer"
                ],
                "type": "object"
               }
              }
             },
             "required": true
            },
            "responses": {
             "200": {
              "content": {
               "application/json": {
                "schema": {
                 "properties": {
                  "ids": {
                   "description": "only for a dry run: the ids that would be replayed",
                   "items": {
                    "type": "string"
                   },
                   "type": "array"
                  },
                  "notFound": {
                   "items": {
                    "type": "string"
                   },
                   "type": "array"
                  },
                  "replayed": {
                   "minimum": 0,
                   "type": "integer"
                  },
                  "skipped": {
                   "minimum": 0,
                   "type": "integer"
                  }
                 },
                 "required": [
                  "replayed",
                  "skipped",
                  "notFound"
                 ],
                 "type": "object"
                }
               }
              },
              "description": "how many were replayed and skipped"
             },
             "400": {
              "$ref": "#/components/responses/BadRequest"
             },
             "401": {
              "$ref": "#/components/responses/Unauthorized"
             },
             "404": {
              "$ref": "#/components/responses/NotFound"
             },
             "413": {
              "$ref": "#/components/responses/TooLarge"
             },
             "503": {
              "$ref": "#/components/responses/StoreUnavailable"
             }
            },
            "summary": "re-queue dead letters with their original webhook-id"
           }
          },
          "/admin/events": {
           "get": {
            "operationId": "listEvents",
            "parameters": [
             {
              "in": "query",
              "name": "source",
              "schema": {
               "minLength": 1,
               "type": "string"
              }
             },
             {
              "in": "query",
              "name": "eventType",
              "schema": {
               "minLength": 1,
               "type": "string"
              }
             },
             {
              "in": "query",
              "name": "orderId",
              "schema": {
               "minLength": 1,
               "type": "string"
              }
             },
             {
              "in": "query",
              "name": "dedupKey",
              "schema": {
               "minLength": 1,
               "type": "string"
              }
             },
             {
              "description": "events with at least one delivery in this state (pending includes an attempt under way)",
              "in": "query",
              "name": "status",
              "schema": {
               "enum": [
                "pending",
                "delivered",
                "dead_lettered"
               ],
               "type": "string"
              }
             },
             {
              "description": "receivedAt at or after this time",
              "in": "query",
              "name": "since",
              "schema": {
               "format": "date-time",
               "type": "string"
              }
             },
             {
              "description": "receivedAt before this time",
              "in": "query",
              "name": "until",
              "schema": {
               "format": "date-time",
               "type": "string"
              }
             },
             {
              "in": "query",
              "name": "limit",
              "schema": {
               "default": 100,
               "maximum": 1000,
               "minimum": 1,
               "type": "integer"
              }
             },
             {
              "description": "the nextCursor of the previous page",
              "in": "query",
              "name": "cursor",
              "schema": {
               "pattern": "^[0-9]+\\.[A-Za-z0-9_]{1,64}$",
               "type": "string"
              }
             }
            ],
            "responses": {
             "200": {
              "content": {
               "application/json": {
                "schema": {
                 "properties": {
                  "events": {
                   "items": {
                    "$ref": "#/components/schemas/EventSummary"
                   },
                   "type": "array"
                  },
                  "nextCursor": {
                   "type": [
                    "string",
                    "null"
                   ]
                  }
                 },
                 "required": [
                  "events",
                  "nextCursor"
                 ],
                 "type": "object"
                }
               }
              },
              "description": "a page of events"
             },
             "400": {
              "$ref": "#/components/responses/BadRequest"
             },
             "401": {
              "$ref": "#/components/responses/Unauthorized"
             },
             "503": {
              "$ref": "#/components/responses/StoreUnavailable"
             }
            },
            "summary": "the event log, newest first"
           }
          },
          "/admin/events/{id}": {
           "get": {
            "operationId": "showEvent",
            "parameters": [
             {
              "in": "path",
              "name": "id",
              "required": true,
              "schema": {
               "type": "string"
              }
             }
            ],
            "responses": {
             "200": {
              "content": {
               "application/json": {
                "schema": {
                 "$ref": "#/components/schemas/EventDetail"
                }
               }
              },
              "description": "the event"
             },
             "401": {
              "$ref": "#/components/responses/Unauthorized"
             },
             "404": {
              "$ref": "#/components/responses/NotFound"
             },
             "503": {
              "$ref": "#/components/responses/StoreUnavailable"
             }
            },
            "summary": "one event with its headers, body and every attempt of every delivery"
           }
          },
          "/admin/events/{id}/redeliver": {
           "post": {
            "operationId": "redeliverEvent",
            "parameters": [
             {
              "in": "path",
              "name": "id",
              "required": true,
              "schema": {
               "type": "string"
              }
             }
            ],
            "requestBody": {
             "content": {
              "application/json": {
               "schema": {
                "additionalProperties": false,
                "properties": {
                 "consumers": {
                  "description": "default every consumer the event matches now",
                  "items": {
                   "type": "string"
                  },
                  "minItems": 1,
                  "type": "array"
                 }
                },
                "type": "object"
               }
              }
             },
             "required": false
            },
            "responses": {
             "200": {
              "content": {
               "application/json": {
                "schema": {
                 "properties": {
                  "queued": {
                   "items": {
                    "type": "string"
                   },
                   "type": "array"
                  },
                  "skipped": {
                   "items": {
                    "properties": {
                     "consumer": {
                      "type": "string"
                     },
                     "reason": {
                      "type": "string"
                     }
                    },
                    "required": [
                     "consumer",
                     "reason"
                    ],
                    "type": "object"
                   },
                   "type": "array"
                  }
                 },
                 "required": [
                  "queued",
                  "skipped"
                 ],
                 "type": "object"
                }
               }
              },
              "description": "what was queued and what was skipped"
             },
             "400": {
              "$ref": "#/components/responses/BadRequest"
             },
             "401": {
              "$ref": "#/components/responses/Unauthorized"
             },
             "404": {
              "$ref": "#/components/responses/NotFound"
             },
             "413": {
              "$ref": "#/components/responses/TooLarge"
             },
             "503": {
              "$ref": "#/components/responses/StoreUnavailable"
             }
            },
            "summary": "queue a new delivery of a stored event, with its original webhook-id"
           }
          },
          "/admin/openapi.json": {
           "get": {
            "operationId": "openapi",
            "responses": {
             "200": {
              "content": {
               "application/json": {
                "schema": {
                 "type": "object"
                }
               }
              },
              "description": "the OpenAPI 3.1 document"
             },
             "401": {
              "$ref": "#/components/responses/Unauthorized"
             }
            },
            "summary": "this document, as JSON"
           }
          },
          "/healthz": {
           "get": {
            "operationId": "healthz",
            "responses": {
             "200": {
              "content": {
               "application/json": {
                "schema": {
                 "$ref": "#/components/schemas/Status"
                }
               }
              },
              "description": "running"
             }
            },
            "security": [],
            "summary": "200 while the process runs (also on the ingress port)"
           }
          },
          "/metrics": {
           "get": {
            "operationId": "metrics",
            "responses": {
             "200": {
              "content": {
               "text/plain": {
                "schema": {
                 "type": "string"
                }
               }
              },
              "description": "the metrics"
             },
             "401": {
              "$ref": "#/components/responses/Unauthorized"
             }
            },
            "summary": "Prometheus text exposition"
           }
          },
          "/readyz": {
           "get": {
            "operationId": "readyz",
            "responses": {
             "200": {
              "content": {
               "application/json": {
                "schema": {
                 "$ref": "#/components/schemas/Status"
                }
               }
              },
              "description": "ready"
             },
             "503": {
              "content": {
               "application/json": {
                "schema": {
                 "$ref": "#/components/schemas/Status"
                }
               }
              },
              "description": "draining, or the store does not take writes"
             }
            },
            "security": [],
            "summary": "200 when the store is writable and the gateway is not draining"
           }
          }
         },
         "security": [
          {
           "adminToken": []
          }
         ],
         "servers": [
          {
           "url": "http://127.0.0.1:9090"
          }
         ]
        }
        """#
}
