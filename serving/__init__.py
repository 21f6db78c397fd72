"""The serving consumer (routes requests, answers with the small generator or the large model,
hot-swaps on ``ModelUpdate``s). Not implemented yet: see the serving issue."""
