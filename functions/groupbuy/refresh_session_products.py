"""CatalogChangesQueue consumer (catalog.product.updated): open sessions keep showing the product's current
name and category, which listings filter on."""

from patungan.catalog.models import Product
from patungan.composition import groupbuy_service
from patungan.core.consumers import queued_event_handler

lambda_handler = queued_event_handler(
    lambda event: groupbuy_service().refresh_product(Product.model_validate(event.data["product"]))
)
