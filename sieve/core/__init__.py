"""Framework-free domain core: strategies, estimators, labels and errors."""
