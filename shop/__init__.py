"""Shop backend: the store's orders, customers, catalog, returns, logistics and handoff tickets."""
