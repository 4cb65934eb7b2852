"""DSPy on Scribe's memory (needs the ``dspy`` extra): a retriever for DSPy programs and a
summarizer that asks a language model.

Import them from here (``from adapters.dspy import DSPySummarizer``): ``adapters`` does not
re-export this package, so ``import adapters`` never loads DSPy.
"""

from ._retriever import DSPyBridgeError as DSPyBridgeError
from ._retriever import RehydrateRetriever as RehydrateRetriever
from ._call_budget import CallBudget as CallBudget
from ._call_budget import CallBudgetStatistics as CallBudgetStatistics
from ._summarizer import DSPySummarizer as DSPySummarizer
from ._summarizer import DSPySummarizerStatistics as DSPySummarizerStatistics
