"""The Python simple index (PEP 503 HTML, PEP 691 JSON, PEP 592 yanking) serving packs as wheels."""
