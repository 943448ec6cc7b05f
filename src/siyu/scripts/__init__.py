"""The script library (话术库): search scripts by the customer's question, record their use, and their numbers.

Scripts are content items of kind `script` (siyu.content); this package adds the search index (jieba +
BM25, see index.py and text.py), the record of each use (`script_use`) and the usage and conversion
figures. docs/en/scripts.md describes it for operators and integrators.
"""
