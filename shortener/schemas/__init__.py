"""marshmallow schemas: what goes over the wire, with every id as an absolute URI."""
