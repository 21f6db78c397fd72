"""The main job's pure parts: the paper's figures computed from requests and their responses."""
