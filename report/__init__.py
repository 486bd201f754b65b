"""`make report`: how the assistant is doing, from the tracker store and the shop's ratings."""
