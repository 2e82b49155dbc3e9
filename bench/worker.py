# This file is part of Tryton.  The COPYRIGHT file at the top level of
# this repository contains the full copyright notices and license terms.
"""trytond-worker with the module imported from BENCH_MODULE_PATH

    BENCH_MODULE_PATH=var/bench/module-<commit> python -m bench.worker ...

It takes the arguments of trytond-worker and does what its script does."""
from bench.admin import configure


def main():
    options = configure('get_parser_worker')
    # Import after the configuration is read
    import trytond.worker as worker
    from trytond.pool import Pool
    Pool.start()
    worker.work(options)


if __name__ == '__main__':
    main()
