"""marshmallow contracts, one module per resource. Field docs live in metadata (they reach OpenAPI)."""
