"""New posts from the blog's feed: fetch and parse it, record new posts, create sends."""
