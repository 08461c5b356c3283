"""Source rows with planted personal data, and rules covering every column of the shop schema."""

from __future__ import annotations

from typing import Any

RULES: dict[str, Any] = {
    "version": 1,
    "tables": {
        "customers": {
            "id": "keep", "email": {"fake": "email"}, "full_name": {"fake": "name"},
            "phone": {"mask": {"keep_last": 2}}, "country": "keep", "referred_by": "keep",
            "tags": "keep", "profile": "null", "created_at": {"date_shift": {"max_days": 10}},
            "updated_at": {"date_shift": {"max_days": 10}},
        },
        "warehouses": {"code": "hash", "city": "keep"},
        "products": {
            "id": "keep", "sku": "keep", "name": "keep",
            "price": {"noise": 0.1}, "weight_kg": "keep",
        },
        "stock": {"warehouse_code": "hash", "product_id": "keep", "quantity": "keep"},
        "orders": {
            "id": "keep", "customer_id": "keep", "status": "keep", "placed_on": "keep",
            "shipping_address": {"template": "{id} Example Street"}, "last_shipment_id": "keep",
        },
        "shipments": {
            "id": "keep", "order_id": "keep", "warehouse_code": "hash", "product_id": "keep",
            "tracking": "hash",
        },
        "order_lines": {
            "order_id": "keep", "line_no": "keep", "product_id": "keep", "quantity": "keep",
        },
    },
}  # fmt: skip

SOURCE_ROWS = """
INSERT INTO customers (email, full_name, phone, country, tags, profile, created_at, updated_at)
SELECT 'real.person' || g || '@corp.example', 'Realname Person' || g, '+49 30 1234' || g, 'DE',
       '{vip}', '{"ssn": "123"}', now() - g * interval '1 day', now()
FROM generate_series(1, 200) g;
UPDATE customers SET referred_by = id - 1 WHERE id > 1;
INSERT INTO warehouses VALUES ('BER-' || 1, 'Berlin'), ('HAM-' || 2, 'Hamburg');
INSERT INTO products (sku, name, price)
SELECT 'SKU' || g, 'Product ' || g, g * 1.5 FROM generate_series(1, 20) g;
INSERT INTO stock SELECT w.code, p.id, 10 FROM warehouses w CROSS JOIN products p;
INSERT INTO orders (customer_id, status, placed_on, shipping_address)
SELECT 1 + g % 200, 'paid', current_date, 'Secretstrasse ' || g || ', Berlin'
FROM generate_series(1, 300) g;
INSERT INTO shipments (order_id, warehouse_code, product_id, tracking)
SELECT o.id, 'BER-1', 1 + o.id % 20, gen_random_uuid() FROM orders o;
UPDATE orders o SET last_shipment_id = s.id FROM shipments s WHERE s.order_id = o.id;
INSERT INTO order_lines SELECT o.id, 1, 1 + o.id % 20, 2 FROM orders o;
"""
