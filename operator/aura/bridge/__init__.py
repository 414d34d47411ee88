"""`aura bridge`: Stripe webhook events become Agent desired states; agent status over HTTP.

Module map (each module's docstring states its contract):

- `config`      BridgeConfig from flags and environment; plans (price id -> size/runtime).
- `signature`   `Stripe-Signature` verification with several secrets (rotation).
- `mapping`     pure: subscription status / event type -> desired state (the README table).
- `stripe_api`  the `StripeApi` Protocol and its adapter on the official `stripe` client.
- `errors`      the error tree; Kubernetes errors are classified once, in `agents`.
- `agents`      the Agent store on kubernetes_asyncio (find, create, compare-and-patch).
- `processor`   one verified event -> one outcome (dedup, ordering, re-read, retries).
- `limits`, `protocol`: bounds on bodies, read deadlines, connections and streams (hostile
  or buggy clients), at the request and the transport level.
- `webhook`, `status_api`, `sse`, `metrics`, `app`, `cli`: the HTTP surface.
"""
