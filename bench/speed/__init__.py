"""Speed benchmarks: genlab's training and sampling steps beside peer libraries, each trainer
setting, torch.compile and the roofline. Every timing goes through `bench.speed.timing`."""
