"""`aura bridge`: Stripe webhook events become Agent desired states; agent status over HTTP.

Module map (each module's docstring states its contract):

- `config`      BridgeConfig from flags and environment; plans (price id -> size/runtime).
- `signature`   `Stripe-Signature` verification with several secrets (rotation).
- `mapping`     pure: subscription status / event type -> desired state (the README table).
- `stripe_api`  the `StripeApi` Protocol and its adapter (the subscription GET on aiohttp).
- `errors`      the error tree (`Retryable`, `Permanent`, ...); Kubernetes errors are classified
                once, in `agents`.
- `agents`      the typed `Agent` view and the Agent store on kubernetes_asyncio (find, create,
                compare-and-patch).
- `processor`   one verified event -> one `Outcome` (`outcome`): handle -> observe -> apply,
                built from one module per concern: `dedup` (event ids seen), `keyed_locks`
                (one subscription at a time), `observe` (the Stripe re-read), `retry`,
                `apply` (compare-and-set on an existing Agent), `creation` (the Agent of a
                checkout), `early` (states that arrive before their checkout), `grace` (the
                past-due sweep); `lru` bounds their memories.
- `limits`, `protocol`: bounds on bodies, read deadlines, connections and streams (hostile
  or buggy clients), at the request and the transport level.
- `webhook`, `status_api`, `views`, `sse`, `metrics`, `app`, `cli`: the HTTP surface.
"""
