/// The OpenAPI 3.1 document served at `/openapi.json`, written by hand. A test holds its paths and
/// methods equal to the router's routes; the fuzz run (`scripts/fuzz`) holds the responses to its schemas.
enum OpenAPIDocument {
    static let json = #"""
        {
          "openapi": "3.1.0",
          "info": {
            "title": "Orderly",
            "version": "1.0.0",
            "description": "An event-sourced order system: commands append events to PostgreSQL, queries read MongoDB read models, analysts read the event history. Money is integer minor units. Errors are application/problem+json (RFC 9457) with a stable `type`."
          },
          "security": [
            {
              "bearer": []
            }
          ],
          "components": {
            "securitySchemes": {
              "bearer": {
                "type": "http",
                "scheme": "bearer",
                "bearerFormat": "JWT",
                "description": "Claims: sub, role (customer, staff, analyst, admin), iss, exp. `orderly token --role ROLE --subject ID` mints one."
              }
            },
            "responses": {
              "BadRequest": {
                "description": "Malformed request: invalid JSON, wrong types, unknown fields or bad query parameters (`invalid-body`, `invalid-query`, `invalid-idempotency-key`)",
                "content": {
                  "application/problem+json": {
                    "schema": {
                      "$ref": "#/components/schemas/Problem"
                    }
                  }
                }
              },
              "Unauthorized": {
                "description": "No token, or a token that is malformed, badly signed, expired or from another issuer (`unauthenticated`, `invalid-token`)",
                "content": {
                  "application/problem+json": {
                    "schema": {
                      "$ref": "#/components/schemas/Problem"
                    }
                  }
                }
              },
              "Forbidden": {
                "description": "The token's role may not do this (`forbidden`)",
                "content": {
                  "application/problem+json": {
                    "schema": {
                      "$ref": "#/components/schemas/Problem"
                    }
                  }
                }
              },
              "NotFound": {
                "description": "Not found, or not yours (`not-found`)",
                "content": {
                  "application/problem+json": {
                    "schema": {
                      "$ref": "#/components/schemas/Problem"
                    }
                  }
                }
              },
              "Conflict": {
                "description": "`order-ended`, or `concurrency-conflict` naming the stream and both versions",
                "content": {
                  "application/problem+json": {
                    "schema": {
                      "$ref": "#/components/schemas/Problem"
                    }
                  }
                }
              },
              "ReadModelBehind": {
                "description": "The order has not reached `minPosition` in time (`read-model-behind`); retry after `Retry-After` seconds",
                "headers": {
                  "Retry-After": {
                    "schema": {
                      "type": "integer",
                      "minimum": 1
                    }
                  }
                },
                "content": {
                  "application/problem+json": {
                    "schema": {
                      "$ref": "#/components/schemas/Problem"
                    }
                  }
                }
              },
              "TooLarge": {
                "description": "Body over 64 KiB (`body-too-large`)",
                "content": {
                  "application/problem+json": {
                    "schema": {
                      "$ref": "#/components/schemas/Problem"
                    }
                  }
                }
              },
              "Unprocessable": {
                "description": "A domain rule is broken (`validation-failed`, naming the field) or an idempotency key was reused with another body (`idempotency-key-reused`)",
                "content": {
                  "application/problem+json": {
                    "schema": {
                      "$ref": "#/components/schemas/Problem"
                    }
                  }
                }
              },
              "Unavailable": {
                "description": "PostgreSQL (commands, the events API: `store-unavailable`) or the document server (queries: `read-model-unavailable`) did not answer in time; retry after `Retry-After` seconds. A command answered so after it was sent may or may not have been stored: retry it with the same Idempotency-Key",
                "headers": {
                  "Retry-After": {
                    "schema": {
                      "type": "integer",
                      "minimum": 1
                    }
                  }
                },
                "content": {
                  "application/problem+json": {
                    "schema": {
                      "$ref": "#/components/schemas/Problem"
                    }
                  }
                }
              },
              "RateLimited": {
                "description": "Too many commands from this caller (`rate-limited`); retry after `Retry-After` seconds",
                "headers": {
                  "Retry-After": {
                    "schema": {
                      "type": "integer",
                      "minimum": 1
                    }
                  }
                },
                "content": {
                  "application/problem+json": {
                    "schema": {
                      "$ref": "#/components/schemas/Problem"
                    }
                  }
                }
              }
            },
            "schemas": {
              "Problem": {
                "type": "object",
                "required": [
                  "type",
                  "title",
                  "detail",
                  "status"
                ],
                "properties": {
                  "type": {
                    "type": "string",
                    "format": "uri",
                    "description": "Stable: https://orderly.dev/problems/<name>"
                  },
                  "title": {
                    "type": "string"
                  },
                  "detail": {
                    "type": "string"
                  },
                  "status": {
                    "type": "integer"
                  },
                  "field": {
                    "type": "string",
                    "description": "The offending input"
                  }
                }
              },
              "OrderLine": {
                "type": "object",
                "additionalProperties": false,
                "required": [
                  "sku",
                  "quantity",
                  "unitPrice"
                ],
                "properties": {
                  "sku": {
                    "type": "string",
                    "minLength": 1,
                    "maxLength": 64,
                    "pattern": "^[A-Za-z0-9_.:-]+$"
                  },
                  "quantity": {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": 10000
                  },
                  "unitPrice": {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": 100000000,
                    "description": "Minor units; must equal the SKU's catalog price when stock is reserved"
                  }
                }
              },
              "PlaceOrderRequest": {
                "type": "object",
                "additionalProperties": false,
                "required": [
                  "customerId",
                  "currency",
                  "lines",
                  "paymentToken"
                ],
                "properties": {
                  "customerId": {
                    "type": "string",
                    "minLength": 1,
                    "maxLength": 64,
                    "pattern": "^[A-Za-z0-9_.:-]+$",
                    "description": "For a customer token: the token's subject"
                  },
                  "currency": {
                    "type": "string",
                    "pattern": "^[A-Z]{3}$"
                  },
                  "lines": {
                    "type": "array",
                    "minItems": 1,
                    "maxItems": 100,
                    "items": {
                      "$ref": "#/components/schemas/OrderLine"
                    },
                    "description": "One line per SKU (a SKU twice is refused)"
                  },
                  "paymentToken": {
                    "type": "string",
                    "minLength": 1,
                    "maxLength": 64,
                    "pattern": "^[A-Za-z0-9_.:-]+$",
                    "description": "Simulated gateway: tok_ok approves, tok_declined declines"
                  }
                }
              },
              "CommandAccepted": {
                "type": "object",
                "required": [
                  "orderId",
                  "position"
                ],
                "properties": {
                  "orderId": {
                    "type": "string"
                  },
                  "position": {
                    "type": "integer",
                    "format": "int64"
                  }
                }
              },
              "RestockRequest": {
                "type": "object",
                "additionalProperties": false,
                "required": [
                  "quantity",
                  "unitPrice"
                ],
                "properties": {
                  "quantity": {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": 1000000
                  },
                  "unitPrice": {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": 100000000
                  }
                }
              },
              "RestockAccepted": {
                "type": "object",
                "required": [
                  "sku",
                  "position"
                ],
                "properties": {
                  "sku": {
                    "type": "string"
                  },
                  "position": {
                    "type": "integer",
                    "format": "int64"
                  }
                }
              },
              "Order": {
                "type": "object",
                "required": [
                  "orderId",
                  "customerId",
                  "status",
                  "currency",
                  "lines",
                  "total",
                  "placedAt",
                  "updatedAt",
                  "timeline",
                  "version",
                  "position"
                ],
                "properties": {
                  "orderId": {
                    "type": "string"
                  },
                  "customerId": {
                    "type": "string"
                  },
                  "status": {
                    "type": "string",
                    "enum": [
                      "PLACED",
                      "STOCK_RESERVED",
                      "PAID",
                      "COMPLETED",
                      "CANCELLED"
                    ]
                  },
                  "currency": {
                    "type": "string"
                  },
                  "lines": {
                    "type": "array",
                    "items": {
                      "type": "object",
                      "required": [
                        "sku",
                        "quantity",
                        "unitPrice"
                      ],
                      "properties": {
                        "sku": {
                          "type": "string"
                        },
                        "quantity": {
                          "type": "integer"
                        },
                        "unitPrice": {
                          "type": "integer"
                        }
                      }
                    }
                  },
                  "total": {
                    "type": "integer",
                    "format": "int64"
                  },
                  "placedAt": {
                    "type": "string"
                  },
                  "updatedAt": {
                    "type": "string"
                  },
                  "timeline": {
                    "type": "array",
                    "items": {
                      "type": "object",
                      "required": [
                        "type",
                        "at",
                        "position"
                      ],
                      "properties": {
                        "type": {
                          "type": "string"
                        },
                        "at": {
                          "type": "string"
                        },
                        "position": {
                          "type": "integer",
                          "format": "int64"
                        }
                      }
                    }
                  },
                  "cancellationReason": {
                    "type": "string",
                    "enum": [
                      "OUT_OF_STOCK",
                      "PRICE_CHANGED",
                      "PAYMENT_DECLINED",
                      "CUSTOMER_REQUEST",
                      "DEADLINE_EXCEEDED"
                    ]
                  },
                  "payment": {
                    "type": "object",
                    "required": [
                      "status"
                    ],
                    "properties": {
                      "status": {
                        "type": "string"
                      },
                      "amount": {
                        "type": "integer",
                        "format": "int64"
                      },
                      "reason": {
                        "type": "string"
                      }
                    }
                  },
                  "notified": {
                    "type": "array",
                    "items": {
                      "type": "string"
                    }
                  },
                  "version": {
                    "type": "integer",
                    "format": "int64"
                  },
                  "position": {
                    "type": "integer",
                    "format": "int64"
                  }
                }
              },
              "OrderPage": {
                "type": "object",
                "required": [
                  "items"
                ],
                "properties": {
                  "items": {
                    "type": "array",
                    "items": {
                      "$ref": "#/components/schemas/Order"
                    }
                  },
                  "nextCursor": {
                    "type": "string"
                  }
                }
              },
              "Stock": {
                "type": "object",
                "required": [
                  "sku",
                  "onHand",
                  "reserved",
                  "available",
                  "version"
                ],
                "properties": {
                  "sku": {
                    "type": "string"
                  },
                  "onHand": {
                    "type": "integer",
                    "format": "int64"
                  },
                  "reserved": {
                    "type": "integer",
                    "format": "int64"
                  },
                  "available": {
                    "type": "integer",
                    "format": "int64"
                  },
                  "unitPrice": {
                    "type": "integer",
                    "format": "int64"
                  },
                  "version": {
                    "type": "integer",
                    "format": "int64"
                  }
                }
              },
              "CustomerSummary": {
                "type": "object",
                "required": [
                  "customerId",
                  "ordersPlaced",
                  "ordersCompleted",
                  "ordersCancelled",
                  "ordersOpen",
                  "spent"
                ],
                "properties": {
                  "customerId": {
                    "type": "string"
                  },
                  "ordersPlaced": {
                    "type": "integer",
                    "format": "int64"
                  },
                  "ordersCompleted": {
                    "type": "integer",
                    "format": "int64"
                  },
                  "ordersCancelled": {
                    "type": "integer",
                    "format": "int64"
                  },
                  "ordersOpen": {
                    "type": "integer",
                    "format": "int64"
                  },
                  "spent": {
                    "type": "object",
                    "additionalProperties": {
                      "type": "integer",
                      "format": "int64"
                    }
                  },
                  "lastOrderId": {
                    "type": "string"
                  },
                  "lastOrderAt": {
                    "type": "string"
                  },
                  "lastOrderPosition": {
                    "type": "integer",
                    "format": "int64",
                    "description": "Log position of the last order placed: the last order is the one latest in the log"
                  }
                }
              },
              "DailySales": {
                "type": "object",
                "required": [
                  "from",
                  "to",
                  "days"
                ],
                "properties": {
                  "from": {
                    "type": "string"
                  },
                  "to": {
                    "type": "string"
                  },
                  "days": {
                    "type": "array",
                    "items": {
                      "type": "object",
                      "required": [
                        "day",
                        "dayNumber",
                        "placed",
                        "completed",
                        "cancelled",
                        "revenue"
                      ],
                      "properties": {
                        "day": {
                          "type": "string"
                        },
                        "dayNumber": {
                          "type": "integer",
                          "format": "int64"
                        },
                        "placed": {
                          "type": "integer",
                          "format": "int64"
                        },
                        "completed": {
                          "type": "integer",
                          "format": "int64"
                        },
                        "cancelled": {
                          "type": "integer",
                          "format": "int64"
                        },
                        "revenue": {
                          "type": "object",
                          "additionalProperties": {
                            "type": "integer",
                            "format": "int64"
                          }
                        }
                      }
                    }
                  }
                }
              },
              "Event": {
                "type": "object",
                "required": [
                  "position",
                  "eventId",
                  "streamId",
                  "streamVersion",
                  "type",
                  "schemaVersion",
                  "recordedAt",
                  "metadata",
                  "data"
                ],
                "properties": {
                  "position": {
                    "type": "integer",
                    "format": "int64"
                  },
                  "eventId": {
                    "type": "string",
                    "format": "uuid"
                  },
                  "streamId": {
                    "type": "string"
                  },
                  "streamVersion": {
                    "type": "integer",
                    "format": "int64"
                  },
                  "type": {
                    "type": "string"
                  },
                  "schemaVersion": {
                    "type": "integer"
                  },
                  "recordedAt": {
                    "type": "string",
                    "format": "date-time"
                  },
                  "metadata": {
                    "type": "object",
                    "properties": {
                      "correlationId": {
                        "type": "string"
                      },
                      "causationId": {
                        "type": "string"
                      },
                      "actor": {
                        "type": "string"
                      }
                    }
                  },
                  "data": {
                    "description": "The event's payload in its type's current schema version"
                  }
                }
              },
              "EventPage": {
                "type": "object",
                "required": [
                  "events",
                  "next"
                ],
                "properties": {
                  "events": {
                    "type": "array",
                    "items": {
                      "$ref": "#/components/schemas/Event"
                    }
                  },
                  "next": {
                    "type": "integer",
                    "format": "int64",
                    "description": "Pass back as `after` for the next page"
                  }
                }
              },
              "StreamEvents": {
                "type": "object",
                "required": [
                  "streamId",
                  "events"
                ],
                "properties": {
                  "streamId": {
                    "type": "string"
                  },
                  "events": {
                    "type": "array",
                    "items": {
                      "$ref": "#/components/schemas/Event"
                    }
                  },
                  "nextVersion": {
                    "type": "integer",
                    "format": "int64"
                  }
                }
              },
              "Status": {
                "type": "object",
                "required": [
                  "status"
                ],
                "properties": {
                  "status": {
                    "type": "string"
                  },
                  "checks": {
                    "type": "object",
                    "additionalProperties": {
                      "type": "string"
                    }
                  }
                }
              }
            }
          },
          "paths": {
            "/orders": {
              "post": {
                "operationId": "placeOrder",
                "summary": "Place an order (customer for themselves; admin)",
                "tags": [
                  "orders"
                ],
                "parameters": [
                  {
                    "name": "Idempotency-Key",
                    "in": "header",
                    "required": false,
                    "description": "A repeat with the same key and body answers the first response and changes nothing",
                    "schema": {
                      "type": "string",
                      "minLength": 1,
                      "maxLength": 255,
                      "pattern": "^[\\x21-\\x7E]+$"
                    }
                  }
                ],
                "requestBody": {
                  "required": true,
                  "content": {
                    "application/json": {
                      "schema": {
                        "$ref": "#/components/schemas/PlaceOrderRequest"
                      }
                    }
                  }
                },
                "responses": {
                  "503": {
                    "$ref": "#/components/responses/Unavailable"
                  },
                  "202": {
                    "description": "Accepted: the saga runs on; `position` can be passed as `minPosition` when reading",
                    "content": {
                      "application/json": {
                        "schema": {
                          "$ref": "#/components/schemas/CommandAccepted"
                        }
                      }
                    }
                  },
                  "400": {
                    "$ref": "#/components/responses/BadRequest"
                  },
                  "401": {
                    "$ref": "#/components/responses/Unauthorized"
                  },
                  "403": {
                    "$ref": "#/components/responses/Forbidden"
                  },
                  "413": {
                    "$ref": "#/components/responses/TooLarge"
                  },
                  "422": {
                    "$ref": "#/components/responses/Unprocessable"
                  },
                  "429": {
                    "$ref": "#/components/responses/RateLimited"
                  }
                }
              },
              "get": {
                "operationId": "listOrders",
                "summary": "Orders, newest first, by pages (customer: their own; staff; admin)",
                "tags": [
                  "orders"
                ],
                "parameters": [
                  {
                    "name": "customerId",
                    "in": "query",
                    "required": false,
                    "description": "Only this customer's orders",
                    "schema": {
                      "type": "string",
                      "minLength": 1,
                      "maxLength": 64
                    }
                  },
                  {
                    "name": "status",
                    "in": "query",
                    "required": false,
                    "description": "Only orders in this status",
                    "schema": {
                      "type": "string",
                      "enum": [
                        "PLACED",
                        "STOCK_RESERVED",
                        "PAID",
                        "COMPLETED",
                        "CANCELLED"
                      ]
                    }
                  },
                  {
                    "name": "from",
                    "in": "query",
                    "required": false,
                    "description": "Placed at or after",
                    "schema": {
                      "type": "string",
                      "format": "date-time"
                    }
                  },
                  {
                    "name": "to",
                    "in": "query",
                    "required": false,
                    "description": "Placed before",
                    "schema": {
                      "type": "string",
                      "format": "date-time"
                    }
                  },
                  {
                    "name": "limit",
                    "in": "query",
                    "required": false,
                    "description": "Page size",
                    "schema": {
                      "type": "integer",
                      "minimum": 1,
                      "maximum": 200,
                      "default": 50
                    }
                  },
                  {
                    "name": "cursor",
                    "in": "query",
                    "required": false,
                    "description": "`nextCursor` of the previous page",
                    "schema": {
                      "type": "string"
                    }
                  }
                ],
                "responses": {
                  "503": {
                    "$ref": "#/components/responses/Unavailable"
                  },
                  "200": {
                    "description": "A page of orders",
                    "content": {
                      "application/json": {
                        "schema": {
                          "$ref": "#/components/schemas/OrderPage"
                        }
                      }
                    }
                  },
                  "400": {
                    "$ref": "#/components/responses/BadRequest"
                  },
                  "401": {
                    "$ref": "#/components/responses/Unauthorized"
                  },
                  "403": {
                    "$ref": "#/components/responses/Forbidden"
                  }
                }
              }
            },
            "/orders/{id}": {
              "get": {
                "operationId": "getOrder",
                "summary": "One order (customer: their own; staff; admin)",
                "tags": [
                  "orders"
                ],
                "parameters": [
                  {
                    "name": "id",
                    "in": "path",
                    "required": true,
                    "description": "The order id",
                    "schema": {
                      "type": "string",
                      "minLength": 1
                    }
                  },
                  {
                    "name": "minPosition",
                    "in": "query",
                    "required": false,
                    "description": "Wait until the order reflects this position (read-your-writes)",
                    "schema": {
                      "type": "integer",
                      "format": "int64",
                      "minimum": 1
                    }
                  },
                  {
                    "name": "wait",
                    "in": "query",
                    "required": false,
                    "description": "Seconds to wait for `minPosition`",
                    "schema": {
                      "type": "integer",
                      "minimum": 0,
                      "maximum": 5,
                      "default": 5
                    }
                  }
                ],
                "responses": {
                  "503": {
                    "$ref": "#/components/responses/Unavailable"
                  },
                  "200": {
                    "description": "The order",
                    "content": {
                      "application/json": {
                        "schema": {
                          "$ref": "#/components/schemas/Order"
                        }
                      }
                    }
                  },
                  "400": {
                    "$ref": "#/components/responses/BadRequest"
                  },
                  "401": {
                    "$ref": "#/components/responses/Unauthorized"
                  },
                  "403": {
                    "$ref": "#/components/responses/Forbidden"
                  },
                  "404": {
                    "$ref": "#/components/responses/NotFound"
                  },
                  "412": {
                    "$ref": "#/components/responses/ReadModelBehind"
                  }
                }
              }
            },
            "/orders/{id}/cancel": {
              "post": {
                "operationId": "cancelOrder",
                "summary": "Cancel an order that has not ended (customer: their own; admin)",
                "tags": [
                  "orders"
                ],
                "parameters": [
                  {
                    "name": "id",
                    "in": "path",
                    "required": true,
                    "description": "The order id",
                    "schema": {
                      "type": "string",
                      "minLength": 1
                    }
                  }
                ],
                "responses": {
                  "503": {
                    "$ref": "#/components/responses/Unavailable"
                  },
                  "202": {
                    "description": "Accepted: stock is released and a charge refunded by the services",
                    "content": {
                      "application/json": {
                        "schema": {
                          "$ref": "#/components/schemas/CommandAccepted"
                        }
                      }
                    }
                  },
                  "401": {
                    "$ref": "#/components/responses/Unauthorized"
                  },
                  "403": {
                    "$ref": "#/components/responses/Forbidden"
                  },
                  "404": {
                    "$ref": "#/components/responses/NotFound"
                  },
                  "409": {
                    "$ref": "#/components/responses/Conflict"
                  },
                  "429": {
                    "$ref": "#/components/responses/RateLimited"
                  }
                }
              }
            },
            "/inventory/{sku}": {
              "get": {
                "operationId": "getStock",
                "summary": "A SKU's stock and catalog price (customer, staff, admin)",
                "tags": [
                  "inventory"
                ],
                "parameters": [
                  {
                    "name": "sku",
                    "in": "path",
                    "required": true,
                    "description": "The SKU",
                    "schema": {
                      "type": "string",
                      "minLength": 1
                    }
                  }
                ],
                "responses": {
                  "503": {
                    "$ref": "#/components/responses/Unavailable"
                  },
                  "200": {
                    "description": "The stock",
                    "content": {
                      "application/json": {
                        "schema": {
                          "$ref": "#/components/schemas/Stock"
                        }
                      }
                    }
                  },
                  "401": {
                    "$ref": "#/components/responses/Unauthorized"
                  },
                  "403": {
                    "$ref": "#/components/responses/Forbidden"
                  },
                  "404": {
                    "$ref": "#/components/responses/NotFound"
                  }
                }
              }
            },
            "/inventory/{sku}/restock": {
              "post": {
                "operationId": "restock",
                "summary": "Add units and set the catalog price (staff, admin)",
                "tags": [
                  "inventory"
                ],
                "parameters": [
                  {
                    "name": "sku",
                    "in": "path",
                    "required": true,
                    "description": "The SKU",
                    "schema": {
                      "type": "string",
                      "minLength": 1
                    }
                  },
                  {
                    "name": "Idempotency-Key",
                    "in": "header",
                    "required": false,
                    "description": "A repeat with the same key and body answers the first response and changes nothing",
                    "schema": {
                      "type": "string",
                      "minLength": 1,
                      "maxLength": 255,
                      "pattern": "^[\\x21-\\x7E]+$"
                    }
                  }
                ],
                "requestBody": {
                  "required": true,
                  "content": {
                    "application/json": {
                      "schema": {
                        "$ref": "#/components/schemas/RestockRequest"
                      }
                    }
                  }
                },
                "responses": {
                  "503": {
                    "$ref": "#/components/responses/Unavailable"
                  },
                  "202": {
                    "description": "Accepted",
                    "content": {
                      "application/json": {
                        "schema": {
                          "$ref": "#/components/schemas/RestockAccepted"
                        }
                      }
                    }
                  },
                  "400": {
                    "$ref": "#/components/responses/BadRequest"
                  },
                  "401": {
                    "$ref": "#/components/responses/Unauthorized"
                  },
                  "403": {
                    "$ref": "#/components/responses/Forbidden"
                  },
                  "413": {
                    "$ref": "#/components/responses/TooLarge"
                  },
                  "422": {
                    "$ref": "#/components/responses/Unprocessable"
                  },
                  "429": {
                    "$ref": "#/components/responses/RateLimited"
                  }
                }
              }
            },
            "/customers/{id}/summary": {
              "get": {
                "operationId": "customerSummary",
                "summary": "A customer's counts and spend (customer: themselves; staff; admin)",
                "tags": [
                  "queries"
                ],
                "parameters": [
                  {
                    "name": "id",
                    "in": "path",
                    "required": true,
                    "description": "The customer id",
                    "schema": {
                      "type": "string",
                      "minLength": 1
                    }
                  }
                ],
                "responses": {
                  "503": {
                    "$ref": "#/components/responses/Unavailable"
                  },
                  "200": {
                    "description": "The summary",
                    "content": {
                      "application/json": {
                        "schema": {
                          "$ref": "#/components/schemas/CustomerSummary"
                        }
                      }
                    }
                  },
                  "401": {
                    "$ref": "#/components/responses/Unauthorized"
                  },
                  "403": {
                    "$ref": "#/components/responses/Forbidden"
                  },
                  "404": {
                    "$ref": "#/components/responses/NotFound"
                  }
                }
              }
            },
            "/sales/daily": {
              "get": {
                "operationId": "dailySales",
                "summary": "Placed, completed, cancelled and revenue per UTC day (staff, analyst, admin)",
                "tags": [
                  "queries"
                ],
                "parameters": [
                  {
                    "name": "from",
                    "in": "query",
                    "required": false,
                    "description": "First day (default: 29 days before `to`)",
                    "schema": {
                      "type": "string",
                      "format": "date"
                    }
                  },
                  {
                    "name": "to",
                    "in": "query",
                    "required": false,
                    "description": "Last day (default: today); at most 366 days in all",
                    "schema": {
                      "type": "string",
                      "format": "date"
                    }
                  }
                ],
                "responses": {
                  "503": {
                    "$ref": "#/components/responses/Unavailable"
                  },
                  "200": {
                    "description": "Days with orders, oldest first",
                    "content": {
                      "application/json": {
                        "schema": {
                          "$ref": "#/components/schemas/DailySales"
                        }
                      }
                    }
                  },
                  "400": {
                    "$ref": "#/components/responses/BadRequest"
                  },
                  "401": {
                    "$ref": "#/components/responses/Unauthorized"
                  },
                  "403": {
                    "$ref": "#/components/responses/Forbidden"
                  }
                }
              }
            },
            "/events": {
              "get": {
                "operationId": "listEvents",
                "summary": "Committed events in log order, by pages (analyst, admin)",
                "tags": [
                  "events"
                ],
                "parameters": [
                  {
                    "name": "after",
                    "in": "query",
                    "required": false,
                    "description": "A position: events after it",
                    "schema": {
                      "type": "integer",
                      "format": "int64",
                      "minimum": 0,
                      "default": 0
                    }
                  },
                  {
                    "name": "limit",
                    "in": "query",
                    "required": false,
                    "description": "Page size",
                    "schema": {
                      "type": "integer",
                      "minimum": 1,
                      "maximum": 1000,
                      "default": 100
                    }
                  },
                  {
                    "name": "type",
                    "in": "query",
                    "required": false,
                    "description": "Event types, comma-separated",
                    "schema": {
                      "type": "string",
                      "minLength": 1,
                      "pattern": "^[A-Za-z0-9_.:-]+(,[A-Za-z0-9_.:-]+)*$"
                    }
                  },
                  {
                    "name": "streamPrefix",
                    "in": "query",
                    "required": false,
                    "description": "Streams whose id starts with this",
                    "schema": {
                      "type": "string",
                      "minLength": 1,
                      "maxLength": 200,
                      "pattern": "^[A-Za-z0-9_.:-]+$"
                    }
                  },
                  {
                    "name": "from",
                    "in": "query",
                    "required": false,
                    "description": "Recorded at or after",
                    "schema": {
                      "type": "string",
                      "format": "date-time"
                    }
                  },
                  {
                    "name": "to",
                    "in": "query",
                    "required": false,
                    "description": "Recorded before",
                    "schema": {
                      "type": "string",
                      "format": "date-time"
                    }
                  }
                ],
                "responses": {
                  "503": {
                    "$ref": "#/components/responses/Unavailable"
                  },
                  "200": {
                    "description": "A page of events",
                    "content": {
                      "application/json": {
                        "schema": {
                          "$ref": "#/components/schemas/EventPage"
                        }
                      }
                    }
                  },
                  "400": {
                    "$ref": "#/components/responses/BadRequest"
                  },
                  "401": {
                    "$ref": "#/components/responses/Unauthorized"
                  },
                  "403": {
                    "$ref": "#/components/responses/Forbidden"
                  }
                }
              }
            },
            "/events/live": {
              "get": {
                "operationId": "tailEvents",
                "summary": "Server-sent events: history after a position, then new events as they commit (analyst, admin)",
                "tags": [
                  "events"
                ],
                "parameters": [
                  {
                    "name": "after",
                    "in": "query",
                    "required": false,
                    "description": "A position: events after it (the `Last-Event-ID` header wins)",
                    "schema": {
                      "type": "integer",
                      "format": "int64",
                      "minimum": 0,
                      "default": 0
                    }
                  },
                  {
                    "name": "Last-Event-ID",
                    "in": "header",
                    "required": false,
                    "description": "The `id` of the last event received",
                    "schema": {
                      "type": "string",
                      "pattern": "^[0-9]+$"
                    }
                  },
                  {
                    "name": "type",
                    "in": "query",
                    "required": false,
                    "description": "Event types, comma-separated",
                    "schema": {
                      "type": "string",
                      "minLength": 1,
                      "pattern": "^[A-Za-z0-9_.:-]+(,[A-Za-z0-9_.:-]+)*$"
                    }
                  },
                  {
                    "name": "streamPrefix",
                    "in": "query",
                    "required": false,
                    "description": "Streams whose id starts with this",
                    "schema": {
                      "type": "string",
                      "minLength": 1,
                      "maxLength": 200,
                      "pattern": "^[A-Za-z0-9_.:-]+$"
                    }
                  }
                ],
                "responses": {
                  "503": {
                    "$ref": "#/components/responses/Unavailable"
                  },
                  "200": {
                    "description": "`id: <position>`, `event: <type>`, `data: <Event as JSON>` per event; `: keep-alive` comments when idle",
                    "content": {
                      "text/event-stream": {
                        "schema": {
                          "type": "string"
                        }
                      }
                    }
                  },
                  "400": {
                    "$ref": "#/components/responses/BadRequest"
                  },
                  "401": {
                    "$ref": "#/components/responses/Unauthorized"
                  },
                  "403": {
                    "$ref": "#/components/responses/Forbidden"
                  }
                }
              }
            },
            "/streams/{id}/events": {
              "get": {
                "operationId": "streamEvents",
                "summary": "One stream's events in version order (analyst, admin)",
                "tags": [
                  "events"
                ],
                "parameters": [
                  {
                    "name": "id",
                    "in": "path",
                    "required": true,
                    "description": "The stream id, such as order-<orderId>",
                    "schema": {
                      "type": "string",
                      "minLength": 1,
                      "maxLength": 200,
                      "pattern": "^[A-Za-z0-9_.:-]+$"
                    }
                  },
                  {
                    "name": "fromVersion",
                    "in": "query",
                    "required": false,
                    "description": "First version",
                    "schema": {
                      "type": "integer",
                      "format": "int64",
                      "minimum": 1,
                      "default": 1
                    }
                  },
                  {
                    "name": "limit",
                    "in": "query",
                    "required": false,
                    "description": "At most this many",
                    "schema": {
                      "type": "integer",
                      "minimum": 1,
                      "maximum": 1000,
                      "default": 1000
                    }
                  }
                ],
                "responses": {
                  "503": {
                    "$ref": "#/components/responses/Unavailable"
                  },
                  "200": {
                    "description": "The stream's events",
                    "content": {
                      "application/json": {
                        "schema": {
                          "$ref": "#/components/schemas/StreamEvents"
                        }
                      }
                    }
                  },
                  "400": {
                    "$ref": "#/components/responses/BadRequest"
                  },
                  "401": {
                    "$ref": "#/components/responses/Unauthorized"
                  },
                  "403": {
                    "$ref": "#/components/responses/Forbidden"
                  },
                  "404": {
                    "$ref": "#/components/responses/NotFound"
                  }
                }
              }
            },
            "/health": {
              "get": {
                "operationId": "health",
                "summary": "Up",
                "tags": [
                  "operations"
                ],
                "security": [],
                "responses": {
                  "200": {
                    "description": "The process is up",
                    "content": {
                      "application/json": {
                        "schema": {
                          "$ref": "#/components/schemas/Status"
                        }
                      }
                    }
                  }
                }
              }
            },
            "/ready": {
              "get": {
                "operationId": "ready",
                "summary": "PostgreSQL, the broker and MongoDB answer",
                "tags": [
                  "operations"
                ],
                "security": [],
                "responses": {
                  "200": {
                    "description": "Ready",
                    "content": {
                      "application/json": {
                        "schema": {
                          "$ref": "#/components/schemas/Status"
                        }
                      }
                    }
                  },
                  "503": {
                    "description": "A part does not answer (named in `checks`)",
                    "content": {
                      "application/json": {
                        "schema": {
                          "$ref": "#/components/schemas/Status"
                        }
                      }
                    }
                  }
                }
              }
            },
            "/metrics": {
              "get": {
                "operationId": "metrics",
                "summary": "Prometheus metrics",
                "tags": [
                  "operations"
                ],
                "security": [],
                "responses": {
                  "200": {
                    "description": "Prometheus text format",
                    "content": {
                      "text/plain": {
                        "schema": {
                          "type": "string"
                        }
                      }
                    }
                  }
                }
              }
            },
            "/openapi.json": {
              "get": {
                "operationId": "openapi",
                "summary": "This document",
                "tags": [
                  "operations"
                ],
                "security": [],
                "responses": {
                  "200": {
                    "description": "OpenAPI 3.1",
                    "content": {
                      "application/json": {
                        "schema": {
                          "type": "object"
                        }
                      }
                    }
                  }
                }
              }
            }
          }
        }
        """#
}
