from evalsite.stats import STYLE_FEATURES
from evalsite.stats.markdown_style import markdown_style

TEXT = """# Answer

Here is **the short version** and __another bold__ phrase.

## Steps

1. First step
2) Second step
- a bullet
  * a nested bullet
+ plus bullet

```python
# not a header
- not a list item
**not bold**
```

Not a list: 3.14 is pi, and #hashtag is not a header. A lone ** is not bold.
"""


def test_markdown_style_counts_headers_list_items_and_bold_outside_code():
    length, headers, lists, bold = markdown_style(TEXT)
    assert length == len(TEXT)
    assert (headers, lists, bold) == (2, 5, 2)
    assert STYLE_FEATURES == ("length", "headers", "lists", "bold")


def test_markdown_style_takes_a_token_count_as_length_and_handles_plain_text():
    assert markdown_style("Just a sentence.", length=4) == (4.0, 0.0, 0.0, 0.0)
    assert markdown_style("") == (0.0, 0.0, 0.0, 0.0)
