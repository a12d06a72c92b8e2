package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"

	"github.com/aerostat-io/aerostat/client"
)

// Connect as the 1.x tools did: the server from AEROSTAT_SERVER (a host
// name such as admin-master, or a mongodb:// URI).
func Example() {
	ctx := context.Background()
	c, err := client.New(ctx, os.Getenv("AEROSTAT_SERVER"), client.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close(ctx)

	names, err := c.Names(ctx, client.Selector{})
	if err != nil {
		log.Fatal(err)
	}
	for _, n := range names {
		if n.State == client.Free {
			fmt.Println(n.Hostname, "is free")
			continue
		}
		fmt.Println(n.Hostname, "is", n.IP)
	}
	// Output:
	// db-master is 10.0.2.1
	// db-slave-1 is 10.0.2.2
	// web-0 is 10.0.1.1
	// web-1 is free
	// web-2 is 10.0.1.3
}

func ExampleClient_HostnameExists() {
	ctx := context.Background()
	c, err := client.New(ctx, os.Getenv("AEROSTAT_SERVER"), client.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close(ctx)

	for _, h := range []string{"web-0", "web-1", "web-7"} {
		ok, err := c.HostnameExists(ctx, h)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(h, ok)
	}
	// Output:
	// web-0 true
	// web-1 true
	// web-7 false
}

func ExampleClient_Hostname() {
	ctx := context.Background()
	c, err := client.New(ctx, os.Getenv("AEROSTAT_SERVER"), client.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close(ctx)

	h, err := c.Hostname(ctx, "i-0a000000000000003")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(h)

	_, err = c.Hostname(ctx, "i-0fffffffffffffff")
	fmt.Println(errors.Is(err, client.ErrNotFound))
	// Output:
	// web-2
	// true
}

func ExampleClient_Master() {
	ctx := context.Background()
	c, err := client.New(ctx, os.Getenv("AEROSTAT_SERVER"), client.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close(ctx)

	m, err := c.Master(ctx, "db")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(m.Hostname, m.InstanceID, m.IP)
	// Output: db-master i-0d000000000000001 10.0.2.1
}

func ExampleClient_IsMaster() {
	ctx := context.Background()
	c, err := client.New(ctx, os.Getenv("AEROSTAT_SERVER"), client.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close(ctx)

	for _, id := range []string{"i-0d000000000000001", "i-0d000000000000002"} {
		ok, err := c.IsMaster(ctx, "db", id)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(id, ok)
	}
	// Output:
	// i-0d000000000000001 true
	// i-0d000000000000002 false
}

func ExampleClient_Names() {
	ctx := context.Background()
	c, err := client.New(ctx, os.Getenv("AEROSTAT_SERVER"), client.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close(ctx)

	sel, err := client.ParseSelector("service=web,state=bound")
	if err != nil {
		log.Fatal(err)
	}
	names, err := c.Names(ctx, sel)
	if err != nil {
		log.Fatal(err)
	}
	for _, n := range names {
		fmt.Println(n.Hostname, n.InstanceID)
	}
	// Output:
	// web-0 i-0a000000000000001
	// web-2 i-0a000000000000003
}

// Watch first reports every name as ADDED, then what changes, until its
// context ends or the callback returns an error.
func ExampleClient_Watch() {
	ctx := context.Background()
	c, err := client.New(ctx, os.Getenv("AEROSTAT_SERVER"), client.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close(ctx)

	stop := errors.New("seen enough")
	err = c.Watch(ctx, client.Selector{Service: "db"}, func(events []client.Event) error {
		for _, e := range events {
			fmt.Println(e.Type, e.Name.Hostname, e.Name.InstanceID)
		}
		return stop
	})
	fmt.Println(errors.Is(err, stop))
	// Output:
	// ADDED db-master i-0d000000000000001
	// ADDED db-slave-1 i-0d000000000000002
	// true
}
