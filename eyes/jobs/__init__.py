"""Background work. A queue only wakes a worker: the database records what work is pending."""
