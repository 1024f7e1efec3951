"""The knowledge base: every symptom the doctor knows, loaded from `knowledge/**/*.yaml`."""
from __future__ import annotations

from doctor.kb.loader import KnowledgeBase, KnowledgeError, default_knowledge_dir, load_knowledge
from doctor.kb.model import Entry, Symptom

__all__ = ["Entry", "KnowledgeBase", "KnowledgeError", "Symptom", "default_knowledge_dir", "load_knowledge"]
