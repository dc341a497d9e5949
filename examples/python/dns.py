# The DNS lookup tutorial that opens "Ray for Data Science" (the seeds' 004),
# in Python: the tutorial's code with `import wray as ray` in place of
# `import ray`, its four steps one after another, each under a heading.
#
#   wray build examples/python/dns.py
#   wray run --cpus 8 examples/python/dns.wasm
#
# Each lookup sleeps 0.5 s; tasks hold a CPU each, as in Ray, so three of
# them overlap given three CPUs.
import time    # We'll use sleep to simulate long operations.

import wray as ray

from dns_server import DNSServer

ray.init() # Initialize Ray in this application

addresses = { # Some absolutely correct addresses.
    "google.com": "4.3.2.1",
    "microsoft.com": "4.3.2.2",
    "amazon.com": "4.3.2.3",
}

def lookup(name): # A function to return an address for a name.
    time.sleep(0.5) # It takes a long time to run!
    return name, addresses[name] # Also return the name with the address.

print("# lookups one after another")
start = time.time() # How long will this take?
for name in addresses: # Use the keys in addresses...
    n, address = lookup(name) # ... but go through lookup for the values.
    delta = time.time() - start
    print(f"{name}:\t {address} ({delta:.3f} seconds)")

@ray.remote # Decorator turns functions into Ray Tasks.
def ray_lookup(name): # Otherwise, it's identical to lookup().
    time.sleep(0.5)
    return name, addresses[name]

print("# lookups as tasks, all started before waiting")
start = time.time()
references = [ray_lookup.remote(name) for name in addresses]
ns_addresses = ray.get(references) # Wait on all of them together.
for name, address in ns_addresses:
    delta = time.time() - start
    print(f"{name}:\t {address} ({delta:.3f} seconds)")

print("# a DNSServer actor")
server = DNSServer.remote({ # Construct actor instances with .remote
    "google.com": "4.3.2.1",
    "microsoft.com": "4.3.2.2",
    "amazon.com": "4.3.2.3",
})
server.update_address.remote("twitter.com", "4.3.2.4")
server.update_address.remote("instagram.com", "4.3.2.5")
ref = server.get_addresses.remote()
names_addresses = ray.get(ref)
for name, address in names_addresses.items():
    print(f"{name}:\t {address}")

@ray.remote
def ray_lookup(name):             # Now use the server.
  time.sleep(0.5)
  return name, server.lookup.remote(name)

print("# lookups as tasks asking the actor")
start = time.time()
refs = [ray_lookup.remote(name) for name in names_addresses.keys()]
names_refs2 = ray.get(refs)
for name, ref2 in names_refs2:
    delta = time.time() - start
    name2, address = ray.get(ref2)
    print(f"{name}:\t {address} ({delta:.3f} seconds)")
