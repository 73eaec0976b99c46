"""Datasets: the seeded synthetic arithmetic task of the offline demo (``ispo.data.synthetic``)."""
