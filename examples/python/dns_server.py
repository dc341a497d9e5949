# The DNSServer actor of the DNS lookup tutorial (the seeds' 004), as the
# tutorial writes it, with `import wray as ray` in place of `import ray`.
import wray as ray

@ray.remote
class DNSServer(object):
    def __init__(self, initial_addresses):
        # A dictionary of names to IP addresses.
        self.addresses = initial_addresses

    def lookup(self, name):
        return name, self.addresses[name]

    def get_addresses(self):
        return self.addresses

    def update_address(self, name, ip):
        self.addresses[name] = ip
