"""Aerostat 1.x's client code, run against an Aerostat 2 ledger.

Every function below follows, line by line, the one of the same name in
urbanairship/aerostat at cbf4561 (the last commit; Aerostat 1.0.11): the
file and function are named above each. Only what cannot run here differs,
and each difference is noted:

- Python 3 instead of Python 2 (print, iteritems, `is 0`).
- pymongo 3.11 (Debian bookworm's python3-pymongo) instead of pymongo 1.x/2.x:
  pymongo.Connection is gone, so db_connect builds a MongoClient with the
  write concern asked for: w=0 is what Connection did (unacknowledged
  writes, errors never raised), w=1 is MongoClient's default, the one a 1.x
  fork moved to pymongo 3 runs with. find().count(), insert() and update()
  are the 1.x calls, still in pymongo 3.11 (deprecated, warnings muted).
- No EC2 metadata, /bin/hostname or /etc/hosts: the instance id and IP
  come from the command line (as --offline did with fixed values), the
  system hostname is not set, and the updater prints the lines it would
  write.

Usage: onex.py URI DATABASE W COMMAND ARGS...; prints one JSON document.
A 1.x client that dies (KeyError, DuplicateKeyError...) exits 1 with the
traceback on stderr, as the 1.x process would.
"""

import json
import operator
import sys
import warnings

import pymongo

warnings.simplefilter('ignore', DeprecationWarning)


# aerostat/aerostat.py: db_connect. pymongo.Connection(host, port) in 1.x.
def db_connect(uri, w):
    return pymongo.MongoClient(uri, w=w, serverSelectionTimeoutMS=10000)


# aerostat/aerostat.py: hostname_exists
def hostname_exists(db, hostname):
    """Check if a hostname exists."""
    results = db.servers.find({'hostname': hostname}).count()
    if results > 0:
        return True
    else:
        return False


# aerostat/aerostat.py: get_hostname
def get_hostname(db, inst_id):
    """Get the hostname for an instnace."""
    result = db.servers.find_one({'instance_id': inst_id})
    if result:
        return result['hostname']
    else:
        return None


# aerostat/aerostat.py: get_master
def get_master(db, service):
    master_id = None
    res = list(db.servers.find(
            {'hostname': '%s-master' % service}))
    if len(res) > 1:
        return None
    if res:
        master_id = res[0]['instance_id']

    return master_id


# aerostat/aerostat.py: check_master
def check_master(db, service, inst_id):
    cur_master = get_master(db, service)

    return cur_master == inst_id


# aerostat/registrar.py: class Registrar
class Registrar(object):

    # registrar.py: Registrar.check_dup
    def check_dup(self, db, instance_id):
        if db.servers.find({'instance_id': instance_id}).count() > 0:
            return True
        return False

    # registrar.py: Registrar.get_smallest_gap (string sort: 1.x's defect)
    def get_smallest_gap(self, db, service):
        gaps = list(db.servers.find({'instance_id': '', 'service': service}))
        if len(gaps) > 0:
            gaps.sort(key=operator.itemgetter('hostname'))

            return gaps[0]['hostname']

    # registrar.py: Registrar.hostname_instance_exists
    def hostname_instance_exists(self, db, hostname):
        result = db.servers.find_one({'hostname': hostname})
        if result and result['instance_id']:
            return True
        else:
            return False

    # registrar.py: Registrar.alias_exists
    def alias_exists(self, db, aliases):
        results = list(db.servers.find({'aliases': {'$in': aliases}}))
        if len(results) > 0:
            ret_val = []
            [ret_val.extend(result['aliases']) for result in results]
            return ret_val

    # registrar.py: Registrar.pick_name
    def pick_name(self, db, service, service_type, instance_id):
        hostname = None
        if self.check_dup(db, instance_id) and get_hostname(
                db, instance_id):
            return None

        results = list(db.servers.find({'service': service}))
        named_in_service = [item for item in results if item['hostname']]
        num = len(named_in_service)

        if service_type == 'masterful':
            master_hostname = '%s-master' % (service,)
            if not named_in_service:
                hostname = master_hostname
            elif hostname_exists(db,
                        master_hostname) and not self.hostname_instance_exists(
                                db, master_hostname):
                hostname = master_hostname
            else:
                smallest_slave_gap = self.get_smallest_gap(db, service)
                if smallest_slave_gap:
                    hostname = smallest_slave_gap
                else:
                    hostname = '%s-slave-%s' % (service, num)
        else:
            smallest_gap = self.get_smallest_gap(db, service)
            if smallest_gap:
                hostname = smallest_gap
            else:
                hostname = '%s-%s' % (service, num)

        return hostname

    # registrar.py: Registrar.reset_conflict_aliases
    def reset_conflict_aliases(self, db, conflicts):
        for result in db.servers.find({'aliases': {'$in': conflicts}}):
            new_aliases = list(set(result['aliases']) - set(conflicts))
            db.servers.update({'instance_id': result['instance_id']},
                    {'$set': {'aliases': new_aliases}})

        return True

    # registrar.py: Registrar.register_name
    def register_name(
            self, db, hostname, local_ip, instance_id, service,
            service_type, aliases):
        if aliases:
            aliases = list(set(aliases))
            conflicting_aliases = self.alias_exists(db, aliases)
            if conflicting_aliases:
                self.reset_conflict_aliases(db, conflicting_aliases)

        if hostname_exists(db, hostname):
            db.servers.update(
                    {'hostname': hostname},
                    {'$set': {
                        'ip': local_ip,
                        'service': service,
                        'service_type': service_type,
                        'instance_id': instance_id,
                        'aliases': aliases}})
        else:
            db.servers.insert(
                    {'hostname': hostname,
                     'ip': local_ip,
                     'service': service,
                     'service_type': service_type,
                     'instance_id': instance_id,
                     'aliases': aliases})

        return True

    # registrar.py: Registrar.parse_service_info, on the words of an
    # /etc/aerostat_info line.
    def parse_service_info(self, name_type_info):
        service = None
        service_type = None
        aliases = None

        if len(name_type_info) > 2:
            service, service_type = name_type_info[:2]
            aliases = name_type_info[2:]
        elif len(name_type_info) > 1:
            service, service_type = name_type_info
        else:
            service = name_type_info.pop()
            service_type = 'iterative'

        return (service, service_type, aliases)

    # registrar.py: Registrar.change_hostname
    def change_hostname(self, db, value, inst=None, host=None):
        if not inst and not host:
            return False

        if inst and host:
            return False

        key = 'instance_id'
        if host:
            key = 'hostname'

        param = inst or host
        db.servers.update(
                {key: param},
                {'$set':
                    {'hostname': value}})

        return True

    # registrar.py: Registrar.change_master
    def change_master(self, db, service, service_type, cur_host_inst):
        if service_type != 'masterful' or check_master(
                db, service, cur_host_inst):

            return False

        cur_master_inst = get_master(db, service)
        master_hostname = '%s-master' % (service,)
        if cur_master_inst:
            self.change_hostname(db, '', inst=cur_master_inst)

        self.change_hostname(db, '', inst=cur_host_inst)
        self.change_hostname(db, master_hostname, inst=cur_host_inst)
        if cur_master_inst:
            new_master = self.pick_name(db, service,
                    service_type, cur_master_inst)
            self.change_hostname(db, new_master, inst=cur_master_inst)

        return True

    # registrar.py: Registrar.do_registrar, without set_sys_hostname (it
    # runs /bin/hostname; 1.x registered only when that succeeded).
    def do_registrar(self, db, info, instance_id, local_ip, change_master):
        service, service_type, aliases = self.parse_service_info(info)
        if change_master:
            return self.change_master(
                    db, service, service_type, instance_id)

        hostname = self.pick_name(db, service, service_type, instance_id)
        if hostname:
            self.register_name(
                    db, hostname, local_ip, instance_id, service,
                    service_type, aliases)

        return hostname


# aerostat/updater.py: Updater.do_update (and append_hosts_line,
# format_aliases), returning the lines instead of writing /etc/hosts.
def do_update(db):
    hosts_data = ['127.0.0.1 localhost']
    aerostat_data = db.servers.find()

    for item in aerostat_data:
        if item['ip']:
            hosts_data.append('%s %s' % (item['ip'], item['hostname']))
        if item['aliases']:
            for alias in item['aliases']:
                if item['ip']:
                    hosts_data.append('%s %s' % (item['ip'], alias))

    return hosts_data


# aerostat/aerostat_server.py: Aerostatd.get_mongo_instance_ids
def get_mongo_instance_ids(db):
    return [result['instance_id'] for result in db.servers.find()]


# aerostat/aerostat_server.py: Aerostatd.update_mongo; the ids given are
# get_mongo_aws_diff's result (instances no longer running).
def update_mongo(db, diff_ids):
    for diff_id in diff_ids:
        db.servers.update(
                {'instance_id': diff_id}, {
                    '$set': {'instance_id': '', 'ip': ''}})


def main(argv):
    uri, database, w, command = argv[1], argv[2], int(argv[3]), argv[4]
    args = argv[5:]
    conn = db_connect(uri, w)
    db = conn[database]
    reg = Registrar()
    if command == 'register':  # INSTANCE IP SERVICE [TYPE [ALIAS...]]
        out = {'hostname': reg.do_registrar(db, args[2:], args[0], args[1], False)}
    elif command == 'change-master':  # INSTANCE SERVICE [TYPE]
        out = {'changed': reg.do_registrar(db, args[1:], args[0], None, True)}
    elif command == 'update':
        out = {'hosts': do_update(db)}
    elif command == 'lookup':  # SERVICE INSTANCE HOSTNAME
        service, inst, host = args
        out = {'hostname_exists': hostname_exists(db, host),
               'get_hostname': get_hostname(db, inst),
               'get_master': get_master(db, service),
               'check_master': check_master(db, service, inst)}
    elif command == 'aerostatd':  # INSTANCE... no longer running
        ids = get_mongo_instance_ids(db)
        update_mongo(db, [i for i in args if i in ids])
        out = {'instance_ids': ids}
    else:
        raise SystemExit('unknown command %s' % command)
    conn.close()
    json.dump(out, sys.stdout)


if __name__ == '__main__':
    main(sys.argv)
