"""The API's routes, one module per resource. Each module's `add_routes(api, control, ...)`
adds its routes to the app's own router (`server.app.create_app`), so the app's routes stay
flat: every one an `APIRoute` that the token check and the tests see directly."""
