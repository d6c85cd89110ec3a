"""qrr's HTTP front end (``pip install 'qrr[serve]'``): a resident rerank server that speaks the APIs RAG frameworks
already call (Cohere's, Jina's and vLLM's), with dynamic batching. ``qrr serve`` runs it; ``qrr.server.client``
talks to it. Importing this package loads no web framework: ``qrr.server.app`` does."""
